"""Sans-I/O Serf: member status from memberlist plus intents, user events, queries.

``SerfCore`` is memberlist's delegate. It owns the Serf member table, the three Lamport
clocks, the recent-intent buffer, the user-event and query rings and Serf's three broadcast
queues. Like the SWIM core it never does I/O: events it raises go to ``events`` for the
driver to hand out, packets go out through the SWIM core's effects, and its timers (reap,
reconnect, queue checks, query deadlines) run on the SWIM core's clock.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from consulpy.gossip import codec
from consulpy.gossip.broadcast import Broadcast, BroadcastQueue
from consulpy.gossip.codec import DecodeError
from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.coordinate import (
    Coordinate,
    CoordinateClient,
    ack_payload,
    parse_ack_payload,
)
from consulpy.gossip.events import (
    Event,
    Member,
    MemberEvent,
    MemberEventType,
    MemberStatus,
    Query,
    UserEvent,
)
from consulpy.gossip.keyring import Keyring, KeyringError
from consulpy.gossip.lamport import LamportClock
from consulpy.gossip.messages import NodeStateKind
from consulpy.gossip.serf_messages import (
    FILTER_NODE,
    FILTER_TAG,
    QUERY_FLAG_ACK,
    EventSlot,
    Join,
    KeyResponse,
    Leave,
    QueryMsg,
    QueryResponseMsg,
    SerfMsg,
    SerfPushPull,
    UserEventMsg,
    decode_key_request,
    decode_member,
    decode_relay,
    decode_tags,
    encode_member,
    encode_relay,
    encode_tags,
)
from consulpy.gossip.swim import (
    Addr,
    Labels,
    Node,
    Recorder,
    StartPushPull,
    SwimCore,
    ip_bytes,
    ip_text,
)

INTERNAL_QUERY_PREFIX = "_serf_"
log = logging.getLogger("consulpy.gossip.serf")


class SerfError(Exception):
    """A Serf operation was refused (size limits, bad state)."""


@dataclass(frozen=True, slots=True)
class SerfTimings:
    """Serf-level timings and limits (serf/config.go ``DefaultConfig``)."""

    broadcast_timeout: float = 5.0
    leave_propagate_delay: float = 1.0
    reap_interval: float = 15.0
    reconnect_interval: float = 30.0
    reconnect_timeout: float = 24 * 3600.0
    tombstone_timeout: float = 24 * 3600.0
    recent_intent_timeout: float = 300.0
    query_timeout_mult: int = 16
    event_buffer: int = 512
    query_buffer: int = 512
    user_event_size_limit: int = 512
    query_size_limit: int = 1024
    query_response_size_limit: int = 1024
    max_queue_depth: int = 4096
    min_queue_depth: int = 0
    queue_check_interval: float = 30.0


@dataclass(slots=True)
class _MemberState:
    """Serf's record of one member. Two slots (the 48-byte size class): one exists per
    member per view, and the simulation holds N^2 of them; when a member failed or left is
    kept apart (SerfCore.left_at), for the few that did."""

    member: Member
    status_ltime: int = 0


@dataclass(slots=True)
class _Intent:
    kind: SerfMsg
    ltime: int
    wall: float


@dataclass(slots=True)
class _QuerySlot:
    ltime: int
    ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class QueryResult:
    """Collects acks and responses to a query we sent, until its deadline."""

    id: int
    ltime: int
    deadline: float
    acks: list[str] = field(default_factory=list)
    responses: list[tuple[str, bytes]] = field(default_factory=list)
    closed: bool = False
    on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _with_status(m: Member, status: MemberStatus) -> Member:
    return Member(
        m.name,
        m.addr,
        m.port,
        m.tags,
        status,
        m.protocol_min,
        m.protocol_max,
        m.protocol_cur,
        m.delegate_min,
        m.delegate_max,
        m.delegate_cur,
    )


def _member_from_node(n: Node, status: MemberStatus) -> Member:
    return _member_of(n.name, n.addr, n.port, n.meta, n.vsn, status)


@functools.lru_cache(maxsize=65536)
def _member_of(
    name: str, addr: bytes, port: int, meta: bytes, vsn: bytes, status: MemberStatus
) -> Member:
    """Member is immutable, so every view in this process that agrees on a member (the
    simulation's thousands of cores, or one agent seeing the same alive twice) shares one
    object and its tags dict, decoded once. Callers copy `tags` before changing it."""
    v = list(vsn) + [0] * (6 - len(vsn))
    try:
        tags = decode_tags(meta)
    except DecodeError:
        tags = {}
    return Member(name, ip_text(addr), port, tags, status, v[0], v[1], v[2], v[3], v[4], v[5])


class SerfCore:
    """Serf's state machine on top of a SwimCore."""

    def __init__(
        self,
        name: str,
        addr: str,
        port: int,
        tags: dict[str, str],
        ml_config: MemberlistConfig,
        timings: SerfTimings | None = None,
        keyring: Keyring | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
        coordinates: bool = True,
    ) -> None:
        self.name = name
        self.timings = timings or SerfTimings()
        self.keyring = keyring
        self.rng = rng or random.Random()
        self.tags = dict(tags)
        encoded = encode_tags(self.tags)
        if len(encoded) > 512:
            raise SerfError(f"encoded tags exceed the 512-byte limit ({len(encoded)} bytes)")
        self.ml = SwimCore(name, addr, port, ml_config, self, self.rng, now)
        self.clock = LamportClock()
        self.event_clock = LamportClock()
        self.query_clock = LamportClock()
        self.members: dict[str, _MemberState] = {}
        self.failed: list[str] = []
        # When each failed or left member went (for reaping them).
        self.left_at: dict[str, float] = {}
        # (member, reconnect_timeout) -> that member's own reconnect timeout; lets the layer
        # above honour a timeout a member advertises (Consul's `rc_tm` tag).
        self.reconnect_override: Callable[[Member, float], float] | None = None
        self.left: list[str] = []
        self.recent_intents: dict[str, _Intent] = {}
        self.event_ring: list[EventSlot | None] = [None] * self.timings.event_buffer
        self.query_ring: list[_QuerySlot | None] = [None] * self.timings.query_buffer
        self.event_min_time = 0
        self.join_ignore = False
        self.queries: dict[int, QueryResult] = {}
        self.events: list[Event] = []
        self.state = "alive"  # alive | leaving | left | shutdown
        self.conflict_lost = False
        self.warnings: list[str] = []
        nn = self.num_members
        self.intent_queue = BroadcastQueue(ml_config.retransmit_mult, nn)
        self.event_queue = BroadcastQueue(ml_config.retransmit_mult, nn)
        self.query_queue = BroadcastQueue(ml_config.retransmit_mult, nn)
        # Vivaldi coordinates (Serf's DisableCoordinates = not coordinates): ours, and the last
        # one each member sent us in a ping ack.
        self.coord_client: CoordinateClient | None = None
        self.coord_cache: dict[str, Coordinate] = {}
        if coordinates:
            self.coord_client = CoordinateClient(rng=random.Random(self.rng.random()))
            self.coord_cache[name] = self.coord_client.coord
        # Metrics (serf.msgs.*, serf.coordinate.*): None records nothing; the driver sets it
        # together with the memberlist core's (`use_metrics`).
        self.metrics: Recorder | None = None
        self.metric_labels: Labels = ()

    def use_metrics(self, metrics: Recorder | None, labels: Labels) -> None:
        """Record Serf's and memberlist's metrics into `metrics` with `labels`."""
        self.metrics = self.ml.metrics = metrics
        self.metric_labels = self.ml.metric_labels = labels

    # ------------------------------------------------------------ lifecycle

    @property
    def now(self) -> float:
        return self.ml.now

    def start(self, now: float) -> None:
        self.clock.increment()
        self.event_clock.increment()
        self.query_clock.increment()
        self.ml.start(now)
        t = self.timings
        self.ml.call_at(now + t.reap_interval, self._reap_tick)
        self.ml.call_at(now + t.reconnect_interval, self._reconnect_tick)
        self.ml.call_at(now + t.queue_check_interval, self._queue_tick)

    def num_members(self) -> int:
        return len(self.members)

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        del self.warnings[:-100]

    # ------------------------------------------------------------ public operations

    def after_join(self) -> None:
        """A memberlist join succeeded: announce our join intent."""
        self.broadcast_join(self.clock.time())

    def broadcast_join(self, ltime: int) -> None:
        msg = Join(ltime, self.name)
        self.clock.witness(ltime)
        self._handle_join_intent(msg)
        self.intent_queue.queue(Broadcast(msg.encode()))

    def begin_leave(self, notify: Callable[[], None]) -> bool:
        """Broadcast our leave intent; True if there is anyone to tell."""
        if self.state in ("left", "shutdown"):
            raise SerfError("Leave called after Shutdown or previous Leave")
        self.state = "leaving"
        msg = Leave(self.clock.time(), self.name)
        self.clock.increment()
        self._handle_leave_intent(msg)
        if not self._has_alive_members():
            notify()
            return False
        self.intent_queue.queue(Broadcast(msg.encode(), notify=notify))
        if self.ml.running:
            # Start spreading the intent now, not at the next gossip tick: Leave waits for
            # it to be sent enough times before the dead-about-self can follow.
            self.ml.gossip_once()
        return True

    def remove_failed_node(self, node: str, prune: bool, notify: Callable[[], None]) -> bool:
        """Force a failed member to left (and erase it when ``prune``)."""
        msg = Leave(self.clock.time(), node, prune)
        self.clock.increment()
        self._handle_leave_intent(msg)
        if not self._has_alive_members():
            notify()
            return False
        self.intent_queue.queue(Broadcast(msg.encode(), notify=notify))
        return True

    def set_tags(self, tags: dict[str, str], notify: Callable[[], None] | None = None) -> bool:
        encoded = encode_tags(tags)
        if len(encoded) > 512:
            raise SerfError(f"encoded tags exceed the 512-byte limit ({len(encoded)} bytes)")
        self.tags = dict(tags)
        return self.ml.update_meta(notify)

    def user_event(self, name: str, payload: bytes, coalesce: bool) -> None:
        limit = self.timings.user_event_size_limit
        if len(name) + len(payload) > limit:
            raise SerfError(
                f"user event exceeds configured limit of {limit} bytes before "
                f"encoding (name and payload are {len(name) + len(payload)} bytes)"
            )
        msg = UserEventMsg(self.event_clock.time(), name, payload, coalesce)
        raw = msg.encode()
        if len(raw) > limit:
            raise SerfError(
                f"encoded user event exceeds configured limit of {limit} bytes "
                f"after encoding ({len(raw)} bytes)"
            )
        self.event_clock.increment()
        self._handle_user_event(msg)
        self.event_queue.queue(Broadcast(raw))
        if self.ml.running:
            # First round now, not at the next gossip tick (up to 200 ms away): the same
            # messages and transmit count as Serf's, the event just leaves sooner.
            self.ml.gossip_once()

    def default_query_timeout(self) -> float:
        n = max(1, self.ml.num_nodes())
        return (
            self.ml.config.gossip_interval
            * self.timings.query_timeout_mult
            * math.ceil(math.log10(n + 1))
        )

    def query(
        self,
        name: str,
        payload: bytes,
        *,
        filters: list[bytes] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float | None = None,
    ) -> QueryResult:
        timeout = timeout if timeout and timeout > 0 else self.default_query_timeout()
        flags = QUERY_FLAG_ACK if request_ack else 0
        me = self.ml.node_map[self.name]
        q = QueryMsg(
            self.query_clock.time(),
            self.rng.getrandbits(32),
            me.addr,
            me.port,
            self.name,
            filters or [],
            flags,
            relay_factor,
            int(timeout * 1e9),
            name,
            payload,
        )
        raw = q.encode()
        if len(raw) > self.timings.query_size_limit:
            raise SerfError(f"query exceeds limit of {self.timings.query_size_limit} bytes")
        res = QueryResult(q.id, q.ltime, self.now + timeout)
        self.queries[q.ltime] = res

        def close(_now: float) -> None:
            res.closed = True
            if self.queries.get(q.ltime) is res:
                del self.queries[q.ltime]
            res._changed()

        self.ml.call_at(res.deadline, close)
        self.query_clock.increment()
        self._handle_query(q)
        self.query_queue.queue(Broadcast(raw))
        return res

    # ------------------------------------------------------------ observation

    def member_list(self) -> list[Member]:
        return [ms.member for ms in self.members.values()]

    def local_member(self) -> Member:
        ms = self.members.get(self.name)
        if ms is not None:
            return ms.member
        return _member_from_node(self.ml.local_node(), MemberStatus.ALIVE)

    def _has_alive_members(self) -> bool:
        return any(
            ms.member.status == MemberStatus.ALIVE and n != self.name
            for n, ms in self.members.items()
        )

    def stats(self) -> dict[str, str]:
        return {
            "members": str(len(self.members)),
            "failed": str(len(self.failed)),
            "left": str(len(self.left)),
            "health_score": str(self.ml.health_score()),
            "member_time": str(self.clock.time()),
            "event_time": str(self.event_clock.time()),
            "query_time": str(self.query_clock.time()),
            "intent_queue": str(len(self.intent_queue)),
            "event_queue": str(len(self.event_queue)),
            "query_queue": str(len(self.query_queue)),
            "encrypted": "true" if self.keyring is not None and self.keyring.enabled else "false",
        }

    # ------------------------------------------------------------ memberlist delegate

    def node_meta(self, limit: int) -> bytes:
        meta = encode_tags(self.tags)
        if len(meta) > limit:
            raise SerfError("node meta exceeds limit")
        return meta

    def ack_payload(self) -> bytes:
        if self.coord_client is None:
            return b""
        return ack_payload(self.coord_client.coord)

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        """A direct probe's ack: fold its RTT into our coordinate, cache the peer's."""
        cc = self.coord_client
        if cc is None:
            return
        try:
            other = parse_ack_payload(payload)
        except DecodeError as exc:
            self._warn(f"bad coordinate in ack from {node.name}: {exc}")
            return
        if other is None:
            return
        before = cc.coord
        try:
            after = cc.update(node.name, other, rtt)
        except ValueError as exc:
            cc.stats.rejected += 1
            if self.metrics is not None:
                self.metrics.incr("serf.coordinate.rejected", 1.0, self.metric_labels)
            log.debug("rejected coordinate from %s: %s", node.name, exc)
            return
        if self.metrics is not None:
            # How far this sample moved us (Serf's adjustment-ms), in milliseconds.
            self.metrics.sample(
                "serf.coordinate.adjustment-ms", before.distance(after) * 1000.0, self.metric_labels
            )
        self.coord_cache[node.name] = other
        self.coord_cache[self.name] = cc.coord

    def coordinate(self) -> Coordinate | None:
        """Our current coordinate (None when coordinates are disabled)."""
        return None if self.coord_client is None else self.coord_client.coord

    def cached_coordinate(self, name: str) -> Coordinate | None:
        return self.coord_cache.get(name)

    def has_broadcasts(self) -> bool:
        return bool(self.intent_queue or self.query_queue or self.event_queue)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        out: list[bytes] = []
        used = 0
        m = self.metrics
        for q in (self.intent_queue, self.query_queue, self.event_queue):
            msgs = q.get(overhead, limit - used)
            out += msgs
            for msg in msgs:
                size = len(msg) + overhead
                used += size
                if m is not None:
                    m.sample("serf.msgs.sent", float(size), self.metric_labels)
        return out

    def notify_msg(self, payload: bytes) -> None:
        if not payload:
            return
        if self.metrics is not None:
            self.metrics.sample("serf.msgs.received", float(len(payload)), self.metric_labels)
        t = payload[0]
        body = payload[1:]
        try:
            if t == SerfMsg.LEAVE:
                if self._handle_leave_intent(Leave.decode(body)):
                    self.intent_queue.queue(Broadcast(bytes(payload)))
            elif t == SerfMsg.JOIN:
                if self._handle_join_intent(Join.decode(body)):
                    self.intent_queue.queue(Broadcast(bytes(payload)))
            elif t == SerfMsg.USER_EVENT:
                if self._handle_user_event(UserEventMsg.decode(body)):
                    self.event_queue.queue(Broadcast(bytes(payload)))
            elif t == SerfMsg.QUERY:
                if self._handle_query(QueryMsg.decode(body)):
                    self.query_queue.queue(Broadcast(bytes(payload)))
            elif t == SerfMsg.QUERY_RESPONSE:
                self._handle_query_response(QueryResponseMsg.decode(body))
            elif t == SerfMsg.RELAY:
                ip, port, name, inner = decode_relay(body)
                if len(ip) in (4, 16) and inner:
                    self.ml.send_user((ip_text(ip), port), inner, name)
        except DecodeError as exc:
            self._warn(f"dropping malformed serf message type {t}: {exc}")

    def local_state(self, join: bool) -> bytes:
        pp = SerfPushPull(
            self.clock.time(),
            {n: ms.status_ltime for n, ms in self.members.items()},
            list(self.left),
            self.event_clock.time(),
            list(self.event_ring),
            self.query_clock.time(),
        )
        return pp.encode()

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        if not buf or buf[0] != SerfMsg.PUSH_PULL:
            self._warn("remote state is not a serf push-pull")
            return
        try:
            pp = SerfPushPull.decode(buf[1:])
        except DecodeError as exc:
            self._warn(f"bad remote serf state: {exc}")
            return
        if pp.ltime > 0:
            self.clock.witness(pp.ltime - 1)
        if pp.event_ltime > 0:
            self.event_clock.witness(pp.event_ltime - 1)
        if pp.query_ltime > 0:
            self.query_clock.witness(pp.query_ltime - 1)
        left = set(pp.left_members)
        for name in pp.left_members:
            self._handle_leave_intent(Leave(pp.status_ltimes.get(name, 0) + 1, name))
        for name, lt in pp.status_ltimes.items():
            if name not in left:
                self._handle_join_intent(Join(lt, name))
        if join and self.join_ignore:
            self.event_min_time = pp.event_ltime + 1
        for slot in pp.events:
            if slot is None:
                continue
            for ev_name, ev_payload in slot.events:
                self._handle_user_event(UserEventMsg(slot.ltime, ev_name, ev_payload))

    def notify_join(self, node: Node) -> None:
        ms = self.members.get(node.name)
        old = MemberStatus.NONE
        if ms is None:
            ms = _MemberState(_member_from_node(node, MemberStatus.ALIVE))
            intent = self.recent_intents.pop(node.name, None)
            if intent is not None:
                ms.status_ltime = intent.ltime
                if intent.kind == SerfMsg.LEAVE:
                    ms.member = _with_status(ms.member, MemberStatus.LEAVING)
            self.members[node.name] = ms
        else:
            old = ms.member.status
            ms.member = _member_from_node(node, MemberStatus.ALIVE)
            self.left_at.pop(node.name, None)
        if old in (MemberStatus.FAILED, MemberStatus.LEFT):
            self._drop_from(self.failed, node.name)
            self._drop_from(self.left, node.name)
        self._emit(MemberEventType.JOIN, ms.member)

    def notify_leave(self, node: Node) -> None:
        ms = self.members.get(node.name)
        if ms is None:
            return
        self.left_at[node.name] = self.now
        status = ms.member.status
        if status == MemberStatus.LEAVING or (
            node.state == NodeStateKind.LEFT and status == MemberStatus.ALIVE
        ):
            # memberlist records a node's own dead-about-self as left: a graceful leave.
            ms.member = _with_status(ms.member, MemberStatus.LEFT)
            self.left.append(node.name)
            self._emit(MemberEventType.LEAVE, ms.member)
        elif status == MemberStatus.ALIVE:
            ms.member = _with_status(ms.member, MemberStatus.FAILED)
            self.failed.append(node.name)
            self._emit(MemberEventType.FAILED, ms.member)

    def notify_update(self, node: Node) -> None:
        ms = self.members.get(node.name)
        if ms is None:
            return
        ms.member = _member_from_node(node, ms.member.status)
        self._emit(MemberEventType.UPDATE, ms.member)

    def notify_conflict(self, existing: Node, other: Node) -> None:
        if existing.name != self.name:
            self._warn(
                f"name conflict for {existing.name!r}: {existing.address} vs {other.address}"
            )
            return
        self._warn(
            f"name conflict for ourselves ({self.name!r}) with {other.address}; "
            "asking the cluster who owns the name"
        )
        me = self.ml.node_map[self.name]
        res = self.query(INTERNAL_QUERY_PREFIX + "conflict", self.name.encode())

        def done() -> None:
            if not res.closed:
                return
            matching = 0
            total = 0
            for _frm, payload in res.responses:
                try:
                    member = decode_member(payload)
                except DecodeError:
                    continue
                if member is None:
                    continue
                total += 1
                if member[1] == me.addr and member[2] == me.port:
                    matching += 1
            if total and matching <= total // 2:
                self.conflict_lost = True
                self._warn("minority in name conflict resolution; this node must shut down")

        res.on_change = done

    # ------------------------------------------------------------ intents

    def _emit(self, kind: MemberEventType, member: Member) -> None:
        self.events.append(MemberEvent(kind, (member,)))

    @staticmethod
    def _drop_from(lst: list[str], name: str) -> None:
        if name in lst:
            lst.remove(name)

    def _upsert_intent(self, node: str, kind: SerfMsg, ltime: int) -> bool:
        cur = self.recent_intents.get(node)
        if cur is None or ltime > cur.ltime:
            self.recent_intents[node] = _Intent(kind, ltime, self.now)
            return True
        return False

    def _handle_join_intent(self, msg: Join) -> bool:
        self.clock.witness(msg.ltime)
        ms = self.members.get(msg.node)
        if ms is None:
            return self._upsert_intent(msg.node, SerfMsg.JOIN, msg.ltime)
        if msg.ltime <= ms.status_ltime:
            return False
        ms.status_ltime = msg.ltime
        if ms.member.status == MemberStatus.LEAVING:
            ms.member = _with_status(ms.member, MemberStatus.ALIVE)
        return True

    def _handle_leave_intent(self, msg: Leave) -> bool:
        self.clock.witness(msg.ltime)
        ms = self.members.get(msg.node)
        if ms is None:
            return self._upsert_intent(msg.node, SerfMsg.LEAVE, msg.ltime)
        if msg.ltime <= ms.status_ltime:
            return False
        if msg.node == self.name and self.state == "alive":
            # Someone thinks we left (an old intent): refute with a fresh join intent.
            self.broadcast_join(self.clock.time())
            return False
        status = ms.member.status
        if status == MemberStatus.ALIVE:
            ms.member = _with_status(ms.member, MemberStatus.LEAVING)
            ms.status_ltime = msg.ltime
            if msg.prune:
                self._prune(ms)
            return True
        if status == MemberStatus.FAILED:
            ms.member = _with_status(ms.member, MemberStatus.LEFT)
            ms.status_ltime = msg.ltime
            self._drop_from(self.failed, msg.node)
            self.left.append(msg.node)
            self._emit(MemberEventType.LEAVE, ms.member)
            if msg.prune:
                self._prune(ms)
            return True
        if status in (MemberStatus.LEAVING, MemberStatus.LEFT):
            # Record the newer time so further copies of this intent are not rebroadcast
            # again and again (each copy would otherwise re-enter the queue).
            ms.status_ltime = msg.ltime
            if msg.prune:
                self._prune(ms)
            return True
        return False

    def _prune(self, ms: _MemberState) -> None:
        name = ms.member.name
        if ms.member.status == MemberStatus.LEAVING:
            delay = self.timings.broadcast_timeout + self.timings.leave_propagate_delay
            self.ml.call_at(
                self.now + delay, lambda _n: self._erase(name) if name in self.members else None
            )
        else:
            self._erase(name)

    def _erase(self, name: str) -> None:
        ms = self.members.pop(name, None)
        self.left_at.pop(name, None)
        if self.coord_client is not None:
            self.coord_client.forget(name)
            self.coord_cache.pop(name, None)
        self._drop_from(self.failed, name)
        self._drop_from(self.left, name)
        if ms is not None:
            self.events.append(MemberEvent(MemberEventType.REAP, (ms.member,)))

    # ------------------------------------------------------------ user events

    def _handle_user_event(self, msg: UserEventMsg) -> bool:
        self.event_clock.witness(msg.ltime)
        if msg.ltime < self.event_min_time:
            return False
        cur = self.event_clock.time()
        size = len(self.event_ring)
        if cur > size and msg.ltime < cur - size:
            return False
        idx = msg.ltime % size
        slot = self.event_ring[idx]
        if slot is not None and slot.ltime == msg.ltime:
            if (msg.name, msg.payload) in slot.events:
                return False
        else:
            slot = EventSlot(msg.ltime)
            self.event_ring[idx] = slot
        slot.events.append((msg.name, msg.payload))
        self.events.append(UserEvent(msg.name, msg.payload, msg.ltime, msg.cc))
        return True

    # ------------------------------------------------------------ queries

    def _should_process(self, filters: list[bytes]) -> bool:
        for f in filters:
            if not f:
                return False
            try:
                obj = codec.unpack(f[1:])
            except DecodeError:
                return False
            if f[0] == FILTER_NODE:
                names = [
                    x.decode("utf-8", "surrogateescape") for x in obj or [] if isinstance(x, bytes)
                ]
                if self.name not in names:
                    return False
            elif f[0] == FILTER_TAG:
                if not isinstance(obj, dict):
                    return False
                tag = codec.get_str(obj, "Tag")
                expr = codec.get_str(obj, "Expr")
                try:
                    if re.search(expr, self.tags.get(tag, "")) is None:
                        return False
                except re.error:
                    return False
            else:
                return False
        return True

    def _handle_query(self, q: QueryMsg) -> bool:
        log.debug("query %r ltime=%d id=%d from %s", q.name, q.ltime, q.id, q.source_node)
        self.query_clock.witness(q.ltime)
        cur = self.query_clock.time()
        size = len(self.query_ring)
        if cur > size and q.ltime < cur - size:
            return False
        idx = q.ltime % size
        slot = self.query_ring[idx]
        if slot is not None and slot.ltime == q.ltime:
            if q.id in slot.ids:
                return False
        else:
            slot = _QuerySlot(q.ltime)
            self.query_ring[idx] = slot
        slot.ids.append(q.id)
        rebroadcast = not q.no_broadcast
        if not self._should_process(q.filters):
            return rebroadcast
        if len(q.addr) not in (4, 16):
            return rebroadcast
        dest = (ip_text(q.addr), q.port)
        if q.ack:
            ack = QueryResponseMsg(q.ltime, q.id, self.name, QUERY_FLAG_ACK, None)
            self._send_response(dest, q, ack.encode())
        deadline = self.now + max(0, q.timeout_ns) / 1e9

        def respond(payload: bytes) -> None:
            if self.now > deadline:
                raise SerfError("response is past the deadline")
            raw = QueryResponseMsg(q.ltime, q.id, self.name, 0, payload).encode()
            if len(raw) > self.timings.query_response_size_limit:
                raise SerfError(
                    f"response exceeds limit of {self.timings.query_response_size_limit} bytes"
                )
            self._send_response(dest, q, raw)

        if q.name.startswith(INTERNAL_QUERY_PREFIX):
            self._internal_query(q, respond)
        else:
            self.events.append(
                Query(q.name, q.payload, q.ltime, q.id, q.source_node, deadline, respond)
            )
        return rebroadcast

    def _send_response(self, dest: Addr, q: QueryMsg, raw: bytes) -> None:
        self.ml.send_user(dest, raw, q.source_node)
        if q.relay_factor <= 0:
            return
        peers = [
            ms.member
            for n, ms in self.members.items()
            if n not in (self.name, q.source_node) and ms.member.status == MemberStatus.ALIVE
        ]
        for m in self.rng.sample(peers, min(q.relay_factor, len(peers))):
            relay = encode_relay(q.addr, q.port, q.source_node, raw)
            self.ml.send_user((m.addr, m.port), relay, m.name)

    def _handle_query_response(self, r: QueryResponseMsg) -> None:
        res = self.queries.get(r.ltime)
        log.debug(
            "query response ltime=%d id=%d from=%s ack=%s known=%s",
            r.ltime,
            r.id,
            r.from_,
            r.ack,
            res is not None and res.id == r.id,
        )
        if res is None or res.id != r.id or res.closed:
            return
        if r.ack:
            if r.from_ in res.acks:
                return
            res.acks.append(r.from_)
        else:
            if any(f == r.from_ for f, _ in res.responses):
                return
            res.responses.append((r.from_, r.payload or b""))
        res._changed()

    def _internal_query(self, q: QueryMsg, respond: Callable[[bytes], None]) -> None:
        kind = q.name[len(INTERNAL_QUERY_PREFIX) :]
        if kind == "ping":
            return
        if kind == "conflict":
            node = q.payload.decode("utf-8", "surrogateescape")
            if node == self.name:
                return
            ms = self.members.get(node)
            if ms is None:
                respond(bytes([SerfMsg.CONFLICT_RESPONSE]) + codec.pack(None))
            else:
                m = ms.member
                vsn = bytes(
                    [
                        m.protocol_min,
                        m.protocol_max,
                        m.protocol_cur,
                        m.delegate_min,
                        m.delegate_max,
                        m.delegate_cur,
                    ]
                )
                respond(encode_member(m.name, ip_bytes(m.addr), m.port, m.tags, int(m.status), vsn))
            return
        if kind in ("install-key", "use-key", "remove-key", "list-keys"):
            self._respond_key_query(kind, q.payload, respond)
            return
        self._warn(f"unhandled internal query {q.name!r}")

    def _respond_key_query(
        self, kind: str, payload: bytes, respond: Callable[[bytes], None]
    ) -> None:
        ring = self.keyring
        resp = KeyResponse(False)
        if ring is None or not ring.enabled:
            resp.message = (
                "Keyring is empty (encryption not enabled)"
                if kind == "list-keys"
                else "No keyring to modify (encryption not enabled)"
            )
        elif kind == "list-keys":
            resp.keys = [base64.b64encode(k).decode() for k in ring.keys()]  # noqa: SIM118
            primary = ring.primary()
            resp.primary_key = base64.b64encode(primary).decode() if primary else ""
            resp.result = True
        else:
            try:
                key = decode_key_request(payload)
                if kind == "install-key":
                    ring.install(key)
                elif kind == "use-key":
                    ring.use(key)
                else:
                    ring.remove(key)
                resp.result = True
            except (DecodeError, KeyringError, OSError) as exc:
                resp.message = str(exc)
        raw = resp.encode()
        limit = self.timings.query_response_size_limit - 64
        while kind == "list-keys" and len(raw) > limit and resp.keys:
            total = len(ring.keys()) if ring else 0
            resp.keys = resp.keys[:-1]
            resp.message = (
                f"truncated key list response, showing first {len(resp.keys)} of {total} keys"
            )
            raw = resp.encode()
        try:
            respond(raw)
        except SerfError as exc:
            self._warn(f"failed to respond to key query: {exc}")

    # ------------------------------------------------------------ periodic work

    def _reap_tick(self, now: float) -> None:
        t = self.timings
        self.ml.call_at(now + t.reap_interval, self._reap_tick)
        override = self.reconnect_override
        for lst, timeout in ((self.failed, t.reconnect_timeout), (self.left, t.tombstone_timeout)):
            for name in list(lst):
                ms = self.members.get(name)
                if ms is None:
                    lst.remove(name)
                    continue
                limit = timeout
                if override is not None and lst is self.failed:
                    limit = override(ms.member, timeout)
                if now - self.left_at.get(name, 0.0) > limit:
                    self._erase(name)
        cutoff = now - t.recent_intent_timeout
        for name in [n for n, i in self.recent_intents.items() if i.wall < cutoff]:
            del self.recent_intents[name]

    def _reconnect_tick(self, now: float) -> None:
        self.ml.call_at(now + self.timings.reconnect_interval, self._reconnect_tick)
        if not self.failed or self.state != "alive":
            return
        alive = sum(1 for ms in self.members.values() if ms.member.status == MemberStatus.ALIVE) - 1
        prob = len(self.failed) / max(1, alive)
        if self.rng.random() > prob:
            return
        ms = self.members.get(self.rng.choice(self.failed))
        if ms is not None:
            self.ml.emit(StartPushPull((ms.member.addr, ms.member.port), join=True))

    def _queue_tick(self, now: float) -> None:
        t = self.timings
        self.ml.call_at(now + t.queue_check_interval, self._queue_tick)
        limit = (
            max(t.max_queue_depth, t.min_queue_depth, 2 * len(self.members))
            if t.min_queue_depth
            else t.max_queue_depth
        )
        for q in (self.intent_queue, self.event_queue, self.query_queue):
            if len(q) > limit:
                self._warn(f"broadcast queue depth {len(q)} over {limit}; pruning")
                q.prune(limit)
