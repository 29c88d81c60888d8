"""A server's WAN gossip pool: the servers of every datacenter, one Serf with WAN timings.

Only servers join it, as in Consul. Members are named `<node>.<dc>` and carry the server's LAN
tags (role=consul, dc, port, id, ...), so any server can find the servers of any datacenter
(consulpy/server/router.py). The keyring is `serf/remote.keyring`, seeded from `encrypt` like
the LAN one; `-join-wan`/`retry_join_wan` join it at start.

Flood join, as Consul's servers do: every server of this datacenter seen on the LAN is joined
into the WAN pool at its LAN address and the `wan_join_port` it announces, so one `join -wan`
from any server reaches the whole datacenter. It runs when a LAN member joins or changes, and
every FLOOD_INTERVAL seconds to repair what a lost join left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from consulpy.agent.gossip import pool_config, retry_join
from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import Member, MemberStatus
from consulpy.gossip.serf import Serf

if TYPE_CHECKING:
    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.agent.wan")

FLOOD_INTERVAL = 30.0


def flood_targets(
    lan: list[Member], wan_names: set[str], datacenter: str, own_name: str
) -> list[str]:
    """host:port of each alive server of `datacenter` on the LAN that is missing from the WAN
    pool (whose members are named `<node>.<dc>`); servers with no usable wan_join_port (the
    WAN pool disabled, or not yet bound) are skipped."""
    out = []
    for m in lan:
        tags = m.tags
        if tags.get("role") != "consul" or tags.get("dc") != datacenter:
            continue
        if m.status != MemberStatus.ALIVE or m.name == own_name:
            continue
        if f"{m.name}.{datacenter}" in wan_names:
            continue
        try:
            port = int(tags.get("wan_join_port", ""))
        except ValueError:
            continue
        if not 0 < port < 65536:
            continue
        host = f"[{m.addr}]" if ":" in m.addr else m.addr
        out.append(f"{host}:{port}")
    return out


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
        self._lan_name = agent.node_name
        self._datacenter = agent.datacenter
        self._flood_task: asyncio.Task[None] | None = None
        self._flood_wake = asyncio.Event()

    def start_flood(self, lan_members: Callable[[], list[Member]]) -> None:
        """Keep this datacenter's LAN servers in the WAN pool (Consul's flood join)."""
        self._flood_task = asyncio.get_running_loop().create_task(self._flood_loop(lan_members))

    def request_flood(self) -> None:
        """A LAN member joined or changed: look for servers to flood-join now."""
        self._flood_wake.set()

    async def _flood_loop(self, lan_members: Callable[[], list[Member]]) -> None:
        while True:
            wan_names = {m.name for m in self.serf.members()}
            targets = flood_targets(lan_members(), wan_names, self._datacenter, self._lan_name)
            if targets:
                try:
                    joined = await self.serf.join(targets)
                    log.info(
                        "flood-joined LAN servers into the WAN pool", targets=targets, joined=joined
                    )
                except Exception as exc:  # the next wake-up or tick tries again
                    log.warning("WAN flood join failed", targets=targets, error=str(exc))
            try:
                await asyncio.wait_for(self._flood_wake.wait(), FLOOD_INTERVAL)
            except TimeoutError:
                pass
            self._flood_wake.clear()

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
        if self._flood_task is not None:  # a leaving server must not join itself back
            self._flood_task.cancel()
        await self.serf.leave()

    async def shutdown(self) -> None:
        for task in (self._retry_task, self._flood_task):
            if task is not None:
                task.cancel()
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
