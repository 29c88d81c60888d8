"""The agent's LAN gossip pool: one Serf with Consul's member tags, joins, leave, user events.

Membership events are handed to listeners (the server role bootstraps Raft and reconciles the
catalog from them). User events travel as Serf user events named `consul:event:<name>` whose
payload is Consul's UserEvent shape in msgpack; each agent keeps the last 256 it received,
after applying the node/service/tag filters, for /v1/event/list.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgpack
import structlog

from consulpy.agent.serf_snapshot import Snapshotter
from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import Member, MemberEvent, MemberStatus, UserEvent
from consulpy.gossip.serf import JoinError, Serf, SerfConfig, SerfTimings
from consulpy.util.durations import DurationError, parse_duration_ns

if TYPE_CHECKING:
    from consulpy.agent.local import LocalState
    from consulpy.config import AgentConfig
    from consulpy.config.model import Gossip as GossipTimings

log = structlog.get_logger("consulpy.agent.gossip")

USER_EVENT_PREFIX = "consul:event:"
EVENT_RING = 256


def member_view(m: Member) -> dict[str, Any]:
    """A member as /v1/agent/members renders it."""
    return {
        "Name": m.name,
        "Addr": m.addr,
        "Port": m.port,
        "Tags": dict(m.tags),
        "Status": int(m.status),
        "ProtocolMin": m.protocol_min,
        "ProtocolMax": m.protocol_max,
        "ProtocolCur": m.protocol_cur,
        "DelegateMin": m.delegate_min,
        "DelegateMax": m.delegate_max,
        "DelegateCur": m.delegate_cur,
    }


def event_index(event_id: str) -> int:
    """Consul's event/list index: the two 64-bit halves of the last event's UUID, XORed."""
    digits = event_id.replace("-", "")
    if len(digits) != 32:
        return 1
    return (int(digits[:16], 16) ^ int(digits[16:], 16)) or 1


# The gossip tag a client agent advertises its own reconnect timeout in (Consul's name).
RECONNECT_TIMEOUT_TAG = "rc_tm"


def advertised_reconnect_timeout(member: Member, default: float) -> float:
    """How long a failed member is kept before it is reaped: what it advertises in its
    `rc_tm` tag (advertise_reconnect_timeout, a Go duration), else reconnect_timeout."""
    raw = member.tags.get(RECONNECT_TIMEOUT_TAG)
    if not raw:
        return default
    try:
        seconds = parse_duration_ns(raw) / 1e9
    except DurationError:
        log.warning(
            "member advertises a malformed reconnect timeout", member=member.name, value=raw
        )
        return default
    return seconds if seconds > 0 else default


class GossipHost(Protocol):
    """What the gossip pool needs of the agent: its identity and tags to announce, and (for
    user events filtered by service or tag) its local services, read only when one arrives."""

    config: AgentConfig
    node_name: str
    datacenter: str
    advertise_addr: str
    local: LocalState

    def member_tags(self) -> dict[str, str]: ...


def pool_config(
    cfg: AgentConfig,
    *,
    node_name: str,
    bind: tuple[str, int],
    advertise_addr: str,
    tags: dict[str, str],
    keyring_name: str,
    memberlist: MemberlistConfig,
    timings: GossipTimings,
    reconnect_timeout: float,
    reconnect_override: Callable[[Member, float], float] | None = None,
) -> SerfConfig:
    """The Serf settings of one gossip pool (LAN or WAN): the agent's encryption settings, its
    keyring file `serf/<keyring_name>` (none in -dev or with disable_keyring_file: the keys
    then live in memory only, from `encrypt`), and the pool's timings over its defaults."""
    keyring_file = None
    if cfg.data_dir and not cfg.dev and not cfg.disable_keyring_file:
        keyring_file = os.path.join(cfg.data_dir, "serf", keyring_name)
        os.makedirs(os.path.dirname(keyring_file), exist_ok=True)
    return SerfConfig(
        node_name=node_name,
        bind_addr=bind[0],
        bind_port=bind[1],
        advertise_addr=advertise_addr,
        tags=tags,
        encrypt_key=cfg.encrypt,
        keyring_file=keyring_file,
        gossip_verify_incoming=cfg.encrypt_verify_incoming,
        gossip_verify_outgoing=cfg.encrypt_verify_outgoing,
        memberlist=memberlist.with_(
            gossip_nodes=timings.gossip_nodes,
            gossip_interval=timings.gossip_interval,
            probe_interval=timings.probe_interval,
            probe_timeout=timings.probe_timeout,
            suspicion_mult=timings.suspicion_mult,
            retransmit_mult=timings.retransmit_mult,
        ),
        disable_coordinates=cfg.disable_coordinates,
        timings=SerfTimings(reconnect_timeout=reconnect_timeout),
        reconnect_override=reconnect_override,
    )


async def retry_join(
    join: Callable[[list[str]], Awaitable[int]],
    addresses: list[str],
    interval: float,
    max_attempts: int,
    pool: str,
) -> None:
    """Consul's -retry-join / -retry-join-wan: keep trying until one address answers (or
    `max_attempts`, 0 for ever)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            joined = await join(addresses)
            log.info("joined the gossip pool", pool=pool, joined=joined, attempt=attempt)
            return
        except (JoinError, OSError) as exc:
            log.warning(
                "join failed; will retry",
                pool=pool,
                error=str(exc),
                attempt=attempt,
                retry_in=interval,
            )
        if max_attempts and attempt >= max_attempts:
            log.error("giving up joining", pool=pool, attempts=attempt)
            return
        await asyncio.sleep(interval)


class AgentGossip:
    def __init__(self, agent: GossipHost) -> None:
        self.agent = agent
        cfg = agent.config
        self.serf = Serf(
            pool_config(
                cfg,
                node_name=agent.node_name,
                bind=cfg.serf_lan_bind_address(),
                advertise_addr=agent.advertise_addr,
                tags=agent.member_tags(),
                keyring_name="local.keyring",
                memberlist=MemberlistConfig.lan(),
                timings=cfg.gossip_lan,
                reconnect_timeout=cfg.reconnect_timeout,
                reconnect_override=advertised_reconnect_timeout,
            )
        )
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENT_RING)
        self._event_waiters: list[asyncio.Future[None]] = []
        self._member_listeners: list[Callable[[MemberEvent], Any]] = []
        self._retry_task: asyncio.Task[None] | None = None
        self._rejoin_task: asyncio.Task[None] | None = None
        self.left = False
        # The members last known, to find the cluster again after a restart (not in -dev:
        # its data dir is thrown away).
        self.snapshot = (
            Snapshotter(cfg.data_dir, agent.node_name) if cfg.data_dir and not cfg.dev else None
        )

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.serf.start()
        self.serf.add_listener(self._on_event)
        cfg = self.agent.config
        self._rejoin_previous(cfg.rejoin_after_leave)
        if cfg.start_join:
            await self.join(list(cfg.start_join))
        if cfg.retry_join:
            self._retry_task = asyncio.get_running_loop().create_task(
                retry_join(
                    self.join, list(cfg.retry_join), cfg.retry_interval, cfg.retry_max, "lan"
                )
            )

    def _rejoin_previous(self, rejoin_after_leave: bool) -> None:
        """Serf's snapshot rejoin: contact the members known before the restart, unless this
        agent left the cluster gracefully and rejoin_after_leave is off."""
        if self.snapshot is None:
            return
        previous = self.snapshot.load()
        if previous is None or not previous.alive:
            return
        if previous.left and not rejoin_after_leave:
            log.info(
                "not rejoining the previously known members: this agent left the cluster "
                "(rejoin_after_leave is off)",
                members=len(previous.alive),
            )
            return
        if previous.left:
            log.info("ignoring the previous leave: rejoin_after_leave is on")
        addresses = sorted(previous.alive.values())
        self._rejoin_task = asyncio.get_running_loop().create_task(self._rejoin(addresses))

    async def _rejoin(self, addresses: list[str]) -> None:
        try:
            # Old user events were delivered before the restart: do not replay them.
            joined = await self.serf.join(addresses, ignore_old=True)
        except (JoinError, OSError) as exc:
            log.warning("failed to rejoin any previously known member", error=str(exc))
            return
        self._persist()
        log.info("rejoined the previously known members", joined=joined)

    @property
    def port(self) -> int:
        return self.serf.bound_port

    async def join(self, addresses: list[str]) -> int:
        joined = await self.serf.join(addresses)
        self._persist()
        return joined

    def _persist(self) -> None:
        """After a join: record the members now known (and that this agent is back, no
        longer left) without waiting for the coalesced write."""
        if self.snapshot is None:
            return
        for member in self.serf.members():
            if member.name != self.agent.node_name and member.status == MemberStatus.ALIVE:
                self.snapshot.state.alive[member.name] = f"{member.addr}:{member.port}"
        self.snapshot.state.left = False
        self.snapshot.flush()

    async def leave(self) -> None:
        self.left = True
        await self.serf.leave()
        if self.snapshot is not None:
            self.snapshot.record_leave()

    async def shutdown(self) -> None:
        for task in (self._retry_task, self._rejoin_task):
            if task is not None:
                task.cancel()
        await self.serf.shutdown()
        if self.snapshot is not None:
            self.snapshot.close()

    # ----------------------------------------------------------------- members
    def members(self) -> list[Member]:
        return self.serf.members()

    def member_views(self) -> list[dict[str, Any]]:
        return [member_view(m) for m in self.members()]

    def servers(self) -> list[Member]:
        """Alive servers of this datacenter (what client agents send RPCs to)."""
        dc = self.agent.datacenter
        return [
            m
            for m in self.members()
            if m.tags.get("role") == "consul"
            and m.tags.get("dc") == dc
            and m.status == MemberStatus.ALIVE
        ]

    def coordinate(self, name: str | None = None) -> Coordinate | None:
        """Our LAN coordinate, or the last one member `name` sent us; None if unknown or
        coordinates are disabled."""
        if name is None:
            return self.serf.coordinate()
        return self.serf.cached_coordinate(name)

    def on_member_event(self, listener: Callable[[MemberEvent], Any]) -> None:
        self._member_listeners.append(listener)

    async def set_tags(self, tags: dict[str, str]) -> None:
        await self.serf.set_tags(tags)

    async def force_leave(self, node: str, prune: bool) -> None:
        await self.serf.remove_failed_node(node, prune=prune)

    # ------------------------------------------------------------------ events
    def _on_event(self, event: object) -> None:
        if isinstance(event, MemberEvent):
            if self.snapshot is not None:
                self.snapshot.on_event(event)
            for listener in self._member_listeners:
                result = listener(event)
                if asyncio.iscoroutine(result):
                    asyncio.get_running_loop().create_task(result)
        elif isinstance(event, UserEvent) and event.name.startswith(USER_EVENT_PREFIX):
            self._receive_user_event(event)

    async def fire(
        self, name: str, payload: bytes, node: str = "", service: str = "", tag: str = ""
    ) -> dict[str, Any]:
        for label, pattern in (("node", node), ("service", service), ("tag", tag)):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"Invalid {label} filter: {exc}") from exc
        if tag and not service:
            raise ValueError("Cannot provide tag filter without service filter")
        event = {
            "ID": str(uuid.uuid4()),
            "Name": name,
            "Payload": payload or None,
            "NodeFilter": node,
            "ServiceFilter": service,
            "TagFilter": tag,
            "Version": 1,
            "LTime": 0,
        }
        body = msgpack.packb({k: v for k, v in event.items() if k != "LTime"}, use_bin_type=True)
        await self.serf.user_event(USER_EVENT_PREFIX + name, body, coalesce=False)
        return event

    def _receive_user_event(self, serf_event: UserEvent) -> None:
        try:
            event = msgpack.unpackb(serf_event.payload, raw=False)
            if not isinstance(event, dict) or "ID" not in event:
                raise ValueError("not a user event")
        except (ValueError, msgpack.UnpackException):
            log.warning("dropping malformed user event", name=serf_event.name)
            return
        if not self._wanted(event):
            return
        event["LTime"] = serf_event.ltime
        if any(e["ID"] == event["ID"] for e in self.events):
            return
        self.events.append(event)
        waiters, self._event_waiters = self._event_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wanted(self, event: dict[str, Any]) -> bool:
        """Consul's filters: node name regex, then service regex (and its tag regex)."""
        try:
            if event.get("NodeFilter") and not re.search(event["NodeFilter"], self.agent.node_name):
                return False
            service_filter = event.get("ServiceFilter")
            if service_filter:
                tag_filter = event.get("TagFilter")
                for svc in self.agent.local.services.values():
                    if re.search(service_filter, svc.row["Service"]) and (
                        not tag_filter
                        or any(re.search(tag_filter, t) for t in svc.row.get("Tags") or [])
                    ):
                        return True
                return False
        except re.error:
            return False
        return True

    def list_events(self, name: str = "") -> list[dict[str, Any]]:
        return [e for e in self.events if not name or e["Name"] == name]

    async def wait_event(self, limit: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._event_waiters.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            pass
        finally:
            if future in self._event_waiters:
                self._event_waiters.remove(future)
