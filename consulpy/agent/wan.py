"""A server's WAN gossip pool: the servers of every datacenter, one Serf with WAN timings.

Only servers join it, as in Consul. Members are named `<node>.<dc>` and carry the server's LAN
tags (role=consul, dc, port, id, ...), so any server can find the servers of any datacenter
(consulpy/server/router.py). The keyring is `serf/remote.keyring`, seeded from `encrypt` like
the LAN one; `-join-wan`/`retry_join_wan` join it at start.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from consulpy.agent.gossip import pool_config, retry_join
from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import Member
from consulpy.gossip.serf import Serf

if TYPE_CHECKING:
    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.agent.wan")


# Consul labels the memberlist and Serf metrics of its WAN pool network="wan".
WAN_METRIC_LABELS = (("network", "wan"),)


class WanHost(Protocol):
    """What the WAN pool needs of the agent: identity and the tags to announce."""

    config: AgentConfig
    node_name: str
    datacenter: str

    def member_tags(self) -> dict[str, str]: ...


class WanGossip:
    def __init__(self, agent: WanHost) -> None:
        cfg = agent.config
        bind = cfg.serf_wan_bind_address()
        assert bind is not None, "the WAN pool is disabled (ports.serf_wan = -1)"
        self.config = cfg
        self.name = f"{agent.node_name}.{agent.datacenter}"
        self.serf = Serf(
            pool_config(
                cfg,
                node_name=self.name,
                bind=bind,
                advertise_addr=cfg.effective_advertise_wan(),
                tags=agent.member_tags(),
                keyring_name="remote.keyring",
                memberlist=MemberlistConfig.wan(),
                timings=cfg.gossip_wan,
                reconnect_timeout=cfg.reconnect_timeout_wan,
            ),
            metric_labels=WAN_METRIC_LABELS,
        )
        self._retry_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.serf.start()
        cfg = self.config
        if cfg.start_join_wan:
            await self.join(list(cfg.start_join_wan))
        if cfg.retry_join_wan:
            self._retry_task = asyncio.get_running_loop().create_task(
                retry_join(
                    self.join,
                    list(cfg.retry_join_wan),
                    cfg.retry_interval_wan,
                    cfg.retry_max_wan,
                    "wan",
                )
            )

    @property
    def port(self) -> int:
        return self.serf.bound_port

    async def join(self, addresses: list[str]) -> int:
        return await self.serf.join(addresses)

    async def leave(self) -> None:
        await self.serf.leave()

    async def shutdown(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
        await self.serf.shutdown()

    async def force_leave(self, node: str, prune: bool) -> None:
        await self.serf.remove_failed_node(node, prune=prune)

    async def set_tags(self, tags: dict[str, str]) -> None:
        await self.serf.set_tags(tags)

    def members(self) -> list[Member]:
        return self.serf.members()

    def member_views(self) -> list[dict[str, Any]]:
        from consulpy.agent.gossip import member_view

        return [member_view(m) for m in self.members()]

    def coordinate(self, name: str | None = None) -> Coordinate | None:
        """Our WAN coordinate, or the last one WAN member `name` sent us."""
        if name is None:
            return self.serf.coordinate()
        return self.serf.cached_coordinate(name)
