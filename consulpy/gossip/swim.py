"""Sans-I/O SWIM failure detector with Lifeguard, speaking memberlist's protocol.

The core owns the node table (who exists, in which state, at which incarnation) and every
timer of the protocol. It never touches a socket or a clock: the driver feeds it decoded
messages and the current time (``tick``), and collects what it must send (``effects``). This
is what makes the seeded simulation in tests/gossip possible.

Behaviour follows memberlist: round-robin probing over a shuffled node list, a direct ping,
indirect pings through k peers (with nacks) and a TCP fallback ping, suspicion that decays
with independent confirmations (Lifeguard), refutation by a higher incarnation, a local
health multiplier (awareness) stretching probe timeouts, piggybacked broadcasts, periodic
push-pull anti-entropy scaled with cluster size.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from consulpy.gossip import wire
from consulpy.gossip.broadcast import Broadcast, BroadcastQueue
from consulpy.gossip.codec import DecodeError
from consulpy.gossip.config import (
    MemberlistConfig,
    push_pull_scale,
    remaining_suspicion_time,
    suspicion_timeout,
)
from consulpy.gossip.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MsgType,
    Nack,
    NodeStateKind,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    decode_message,
)

Addr = tuple[str, int]


@functools.lru_cache(maxsize=65536)
def ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def ip_bytes(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@functools.lru_cache(maxsize=65536)
def addr_key(addr: bytes, port: int) -> Addr:
    """One (host, port) tuple per address: every view of a node, the by-address index and
    each packet sent to it share it instead of formatting a new one per use."""
    return (ip_text(addr), port)


_SHARED: dict[bytes, bytes] = {}
_SHARED_MAX = 65536


def shared(b: bytes) -> bytes:
    """The first equal bytes object seen. Why: each received alive message decodes its own
    address, meta and version bytes; a node table keeps one copy per distinct value instead,
    which matters when one process holds many views (the simulation) and costs one dict
    lookup. Bounded: cleared when full (values already stored stay valid)."""
    s = _SHARED.get(b)
    if s is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        s = _SHARED[b] = b
    return s


@dataclass(slots=True)
class Node:
    """What memberlist knows of one node. Owned by the core; handed out as copies."""

    name: str
    addr: bytes
    port: int
    meta: bytes
    vsn: bytes
    incarnation: int = 0
    state: NodeStateKind = NodeStateKind.DEAD
    state_change: float = 0.0

    @property
    def address(self) -> Addr:
        return addr_key(self.addr, self.port)

    def vsn_at(self, i: int) -> int:
        return self.vsn[i] if len(self.vsn) > i else 0

    @property
    def pmax(self) -> int:
        return self.vsn_at(1)

    def dead_or_left(self) -> bool:
        return self.state in (NodeStateKind.DEAD, NodeStateKind.LEFT)

    def copy(self) -> Node:
        return Node(
            self.name,
            self.addr,
            self.port,
            self.meta,
            self.vsn,
            self.incarnation,
            self.state,
            self.state_change,
        )


# ------------------------------------------------------------------ effects (core -> driver)


@dataclass(slots=True)
class SendPacket:
    """Send these plain messages in one UDP packet (compound if several)."""

    addr: Addr
    msgs: list[bytes]
    crc: bool = False


@dataclass(slots=True)
class StartPushPull:
    """Open a TCP stream to ``addr``, exchange full state, then call ``merge_remote``."""

    addr: Addr
    join: bool = False


@dataclass(slots=True)
class StartTcpPing:
    """TCP fallback probe; report with ``tcp_ping_result(seq, ok)`` by ``deadline``."""

    seq: int
    addr: Addr
    ping: Ping
    deadline: float


Effect = SendPacket | StartPushPull | StartTcpPing


class Delegate(Protocol):
    """Hooks the layer above (Serf) provides. All are plain synchronous calls."""

    def node_meta(self, limit: int) -> bytes: ...
    def notify_msg(self, payload: bytes) -> None: ...
    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]: ...
    def local_state(self, join: bool) -> bytes: ...
    def merge_remote_state(self, buf: bytes, join: bool) -> None: ...
    def notify_join(self, node: Node) -> None: ...
    def notify_leave(self, node: Node) -> None: ...
    def notify_update(self, node: Node) -> None: ...
    def notify_conflict(self, existing: Node, other: Node) -> None: ...
    def ack_payload(self) -> bytes: ...
    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None: ...


class NullDelegate:
    """A delegate that adds nothing: plain memberlist (used by the simulation)."""

    def node_meta(self, limit: int) -> bytes:
        return b""

    def notify_msg(self, payload: bytes) -> None:
        pass

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        return []

    def local_state(self, join: bool) -> bytes:
        return b""

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        pass

    def notify_join(self, node: Node) -> None:
        pass

    def notify_leave(self, node: Node) -> None:
        pass

    def notify_update(self, node: Node) -> None:
        pass

    def notify_conflict(self, existing: Node, other: Node) -> None:
        pass

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        return None

    def ack_payload(self) -> bytes:
        return b""


# ------------------------------------------------------------------ timers


@dataclass(order=True, slots=True)
class _Timer:
    when: float
    seq: int
    fn: Callable[[float], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


Labels = tuple[tuple[str, str], ...]


class Recorder(Protocol):
    """Where the core reports memberlist's metrics (msg.alive, probeNode, gossip, ...). The
    application hands in its registry; the library depends on nothing."""

    def incr(self, name: str, value: float = 1.0, labels: Labels = ()) -> None: ...
    def sample(self, name: str, value: float, labels: Labels = ()) -> None: ...


class Awareness:
    """Lifeguard's local health score: 0 is healthy; timeouts scale by (score + 1)."""

    def __init__(self, max_multiplier: int) -> None:
        self.max = max_multiplier
        self.score = 0

    def apply_delta(self, delta: int) -> None:
        self.score = min(max(self.score + delta, 0), self.max - 1)

    def scale(self, t: float) -> float:
        return t * (self.score + 1)


class Suspicion:
    """A suspicion timer that shortens as independent peers confirm it (Lifeguard)."""

    def __init__(self, from_: str, k: int, lo: float, hi: float, now: float) -> None:
        self.k = k
        self.n = 0
        self.lo = lo
        self.hi = hi
        self.start = now
        self.confirmations = {from_}
        self.deadline = now + (hi if k >= 1 else lo)
        self.timer: _Timer | None = None

    def confirm(self, from_: str, now: float) -> bool:
        if self.n >= self.k or from_ in self.confirmations:
            return False
        self.confirmations.add(from_)
        self.n += 1
        self.deadline = now + max(
            0.0, remaining_suspicion_time(self.n, self.k, now - self.start, self.lo, self.hi)
        )
        return True


@dataclass(slots=True)
class _Probe:
    node: str
    seq: int
    start: float
    deadline: float
    done: bool = False
    expected_nacks: int = 0
    nacks: int = 0
    tcp_pending: bool = False
    tcp_ok: bool = False
    at_deadline: bool = False


class VersionMismatch(ValueError):
    """A push-pull was refused because protocol versions are incompatible."""


class SwimCore:
    """The memberlist state machine. Feed it time and messages; drain ``effects``."""

    def __init__(
        self,
        name: str,
        addr: str,
        port: int,
        config: MemberlistConfig,
        delegate: Delegate | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        self.name = name
        self.addr = ip_bytes(addr)
        self.port = port
        self.config = config
        self.delegate: Delegate = delegate or NullDelegate()
        self.rng = rng or random.Random()
        self.now = now
        self.effects: list[Effect] = []
        self.nodes: list[Node] = []
        self.node_map: dict[str, Node] = {}
        self.awareness = Awareness(config.awareness_max_multiplier)
        self.broadcasts = BroadcastQueue(config.retransmit_mult, self.num_nodes)
        self.packet_overhead = 0  # label + encryption bytes the driver adds to every packet
        self.leaving = False
        self.running = False
        self._seq = 0
        self._incarnation = 0
        self._probe_index = 0
        self._probe: _Probe | None = None
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        self._ack_handlers: dict[int, tuple[Callable[[bytes], None], _Timer]] = {}
        self._nack_handlers: dict[int, Callable[[], None]] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._probe_timer: _Timer | None = None
        # Failure-detector news (suspect, confirmation, dead, refutation) queued since the
        # last gossip round: each entry point ends with a round at once when set.
        self._news = False
        # Metrics: None records nothing (the simulation); labels as memberlist's (network).
        self.metrics: Recorder | None = None
        self.metric_labels: Labels = ()

    # ---------------------------------------------------------------- time

    def _at(self, when: float, fn: Callable[[float], None]) -> _Timer:
        self._timer_seq += 1
        t = _Timer(when, self._timer_seq, fn)
        heapq.heappush(self._timers, t)
        return t

    def call_at(self, when: float, fn: Callable[[float], None]) -> _Timer:
        """Run ``fn(now)`` at ``when`` on this core's clock (for the layer above)."""
        return self._at(when, fn)

    def emit(self, e: Effect) -> None:
        """Queue an effect for the driver (the layer above uses it for reconnects)."""
        self._emit(e)

    def next_deadline(self) -> float | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def tick(self, now: float) -> None:
        """Advance to ``now`` and run every timer that is due."""
        self.now = max(self.now, now)
        while self._timers and self._timers[0].when <= self.now:
            t = heapq.heappop(self._timers)
            if not t.cancelled:
                t.fn(self.now)
        self._gossip_news()

    def _gossip_news(self) -> None:
        """A gossip round now if failure-detector news was queued (memberlist waits for the
        next tick, up to gossip_interval). Why: a crash is seen by everyone only when the
        suspicion, its confirmations and the dead message have spread; relayed at once, each
        member starts its suspicion timer as soon as the first prober does, and the first
        dead declaration reaches everybody in a few network hops instead of a few ticks.
        The same messages, each sent as many times; only the first round is sooner."""
        if self._news:
            self._news = False
            if self.running:
                self.gossip_once()

    def _advance(self, now: float | None) -> None:
        if now is not None:
            self.now = max(self.now, now)

    # ---------------------------------------------------------------- lifecycle

    def start(self, now: float) -> None:
        """Declare ourselves alive and start the probe, gossip and push-pull schedules."""
        self.now = now
        self.running = True
        self._set_alive()
        c = self.config
        self._probe_timer = self._at(now + self.rng.random() * c.probe_interval, self._run_probe)
        self._at(now + self.rng.random() * c.gossip_interval, self._run_gossip)
        if c.push_pull_interval > 0:
            self._at(now + self.rng.random() * c.push_pull_interval, self._run_push_pull)

    def stop(self) -> None:
        self.running = False
        self._timers.clear()
        self._ack_handlers.clear()
        self._nack_handlers.clear()

    def next_incarnation(self) -> int:
        self._incarnation = (self._incarnation + 1) & 0xFFFFFFFF
        return self._incarnation

    def _skip_incarnation(self, offset: int) -> int:
        self._incarnation = (self._incarnation + offset) & 0xFFFFFFFF
        return self._incarnation

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def _set_alive(self) -> None:
        meta = self.delegate.node_meta(512)
        a = Alive(self.next_incarnation(), self.name, self.addr, self.port, meta, self.config.vsn())
        self.alive_node(a, None, bootstrap=True)

    def update_meta(self, notify: Callable[[], None] | None = None) -> bool:
        """Re-announce ourselves with fresh meta (tags); True if anyone will hear it."""
        meta = self.delegate.node_meta(512)
        if len(meta) > 512:
            raise ValueError("node meta exceeds 512 bytes")
        a = Alive(self.next_incarnation(), self.name, self.addr, self.port, meta, self.config.vsn())
        self.alive_node(a, notify, bootstrap=True)
        return self.any_alive()

    def leave(self, notify: Callable[[], None] | None = None) -> bool:
        """Broadcast our graceful departure; True if there are peers to tell."""
        self.leaving = True
        me = self.node_map.get(self.name)
        if me is None:
            return False
        self.dead_node(Dead(me.incarnation, self.name, self.name), notify)
        if self.running:
            # A gossip round now rather than at the next tick (memberlist waits for it): the
            # leaver's Leave blocks until this broadcast is sent enough times, and every
            # member sees it left only when it arrives. Same messages, sent sooner.
            self.gossip_once()
        return self.any_alive()

    # ---------------------------------------------------------------- queries

    def num_nodes(self) -> int:
        return len(self.node_map)

    def any_alive(self) -> bool:
        return any(n.name != self.name and not n.dead_or_left() for n in self.nodes)

    def members(self) -> list[Node]:
        return [n.copy() for n in self.nodes]

    def local_node(self) -> Node:
        return self.node_map[self.name].copy()

    def health_score(self) -> int:
        return self.awareness.score

    # ---------------------------------------------------------------- sending

    def _emit(self, e: Effect) -> None:
        self.effects.append(e)

    def pop_effects(self) -> list[Effect]:
        out, self.effects = self.effects, []
        return out

    def _crc_for(self, name: str) -> bool:
        """As memberlist: a CRC when the named recipient speaks protocol 5+ (no name, none).
        Looking the recipient up by name spares every view a by-address index."""
        n = self.node_map.get(name) if name else None
        return n is not None and n.pmax >= 5

    def send_msg(self, addr: Addr, msg: bytes, name: str = "") -> None:
        """Send one message to node `name` at `addr`, piggybacking queued broadcasts."""
        self.send_msgs(addr, [msg], name)

    def send_msgs(self, addr: Addr, msgs: list[bytes], name: str = "") -> None:
        used = sum(len(m) + wire.COMPOUND_OVERHEAD for m in msgs)
        avail = (
            self.config.udp_buffer_size
            - used
            - wire.COMPOUND_HEADER_OVERHEAD
            - self.packet_overhead
        )
        extra = self._get_broadcasts(wire.COMPOUND_OVERHEAD, avail)
        self._emit(SendPacket(addr, [*msgs, *extra], self._crc_for(name)))

    def send_user(self, addr: Addr, payload: bytes, name: str = "") -> None:
        """A best-effort user message (Serf query responses use this).

        Like memberlist's SendTo it carries no piggybacked broadcasts: a query's answer to
        ourselves must not use up the query's own retransmissions.
        """
        self._emit(SendPacket(addr, [bytes([MsgType.USER]) + payload], self._crc_for(name)))

    def _get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        msgs = self.broadcasts.get(overhead, limit)
        used = sum(len(m) + overhead for m in msgs)
        avail = limit - used
        if avail > overhead + wire.USER_MSG_OVERHEAD:
            for m in self.delegate.get_broadcasts(overhead + wire.USER_MSG_OVERHEAD, avail):
                msgs.append(bytes([MsgType.USER]) + m)
        return msgs

    def _broadcast(self, node: str, msg: bytes, notify: Callable[[], None] | None = None) -> None:
        self.broadcasts.queue(Broadcast(msg, name=node, notify=notify))

    # ---------------------------------------------------------------- inbound packets

    def handle_packet(self, frm: Addr, msgs: list[bytes], now: float | None = None) -> None:
        """Process the plain messages of one packet (after the wire layer unwrapped it)."""
        self._advance(now)
        for raw in msgs:
            try:
                m = decode_message(raw)
            except DecodeError:
                continue
            if isinstance(m, tuple):
                if m[1]:
                    self.delegate.notify_msg(m[1])
            elif isinstance(m, Ping):
                self._handle_ping(m, frm)
            elif isinstance(m, IndirectPing):
                self._handle_indirect_ping(m, frm)
            elif isinstance(m, Ack):
                self._handle_ack(m)
            elif isinstance(m, Nack):
                h = self._nack_handlers.get(m.seq_no)
                if h is not None:
                    h()
            elif isinstance(m, Alive):
                if len(m.addr) in (4, 16):
                    self.alive_node(m, None, bootstrap=False)
            elif isinstance(m, Suspect):
                self.suspect_node(m)
            elif isinstance(m, Dead):
                self.dead_node(m)
        self._gossip_news()

    def _handle_ping(self, p: Ping, frm: Addr) -> None:
        if p.node and p.node != self.name:
            return  # addressed to a previous owner of this address
        ack = Ack(p.seq_no, self.delegate.ack_payload())
        to = addr_key(p.source_addr, p.source_port) if p.source_addr and p.source_port else frm
        self.send_msg(to, ack.encode(), p.source_node)

    def stream_ping(self, p: Ping) -> bytes | None:
        """Answer a TCP fallback ping: the ack message, or None if not addressed to us."""
        if p.node and p.node != self.name:
            return None
        return Ack(p.seq_no).encode()  # memberlist's stream acks carry no payload

    def _handle_indirect_ping(self, ind: IndirectPing, frm: Addr) -> None:
        if len(ind.target) not in (4, 16):
            return
        requester = (
            addr_key(ind.source_addr, ind.source_port)
            if ind.source_addr and ind.source_port
            else frm
        )
        seq = self._next_seq()
        ping = Ping(seq, ind.node, self.addr, self.port, self.name)
        answered = [False]

        def on_ack(_payload: bytes) -> None:
            answered[0] = True
            self.send_msg(requester, Ack(ind.seq_no).encode(), ind.source_node)

        def on_timeout(_now: float) -> None:
            self._ack_handlers.pop(seq, None)
            if ind.nack and not answered[0]:
                self.send_msg(requester, Nack(ind.seq_no).encode(), ind.source_node)

        timer = self._at(self.now + self.config.probe_timeout, on_timeout)
        self._ack_handlers[seq] = (on_ack, timer)
        self.send_msg(addr_key(ind.target, ind.port), ping.encode(), ind.node)

    def _handle_ack(self, ack: Ack) -> None:
        h = self._ack_handlers.pop(ack.seq_no, None)
        if h is None:
            return
        fn, timer = h
        timer.cancel()
        fn(ack.payload)

    # ---------------------------------------------------------------- probing

    def _run_probe(self, now: float) -> None:
        self._probe_timer = None
        if not self.running:
            return
        checked = 0
        while True:
            if checked >= len(self.nodes):
                self._schedule_next_probe(now + self.config.probe_interval)
                return
            if self._probe_index >= len(self.nodes):
                self._reset_nodes()
                self._probe_index = 0
                checked += 1
                continue
            node = self.nodes[self._probe_index]
            self._probe_index += 1
            if node.name == self.name or node.dead_or_left():
                checked += 1
                continue
            self._probe_node(node, now)
            return

    def _schedule_next_probe(self, when: float) -> None:
        if self._probe_timer is None and self.running:
            self._probe_timer = self._at(when, self._run_probe)

    def _reset_nodes(self) -> None:
        """Forget nodes dead longer than the gossip-to-the-dead window, and reshuffle."""
        cutoff = self.now - self.config.gossip_to_the_dead_time
        keep = []
        for n in self.nodes:
            if n.dead_or_left() and n.state_change < cutoff and n.name != self.name:
                self.node_map.pop(n.name, None)
            else:
                keep.append(n)
        self.rng.shuffle(keep)
        self.nodes = keep

    def _probe_node(self, node: Node, now: float) -> None:
        interval = self.awareness.scale(self.config.probe_interval)
        if interval > self.config.probe_interval and self.metrics is not None:
            # Probing is slowed down by a bad health score.
            self.metrics.incr("memberlist.degraded.probe", 1.0, self.metric_labels)
        seq = self._next_seq()
        p = _Probe(node.name, seq, now, now + interval)
        self._probe = p
        ping = Ping(seq, node.name, self.addr, self.port, self.name)

        def on_ack(payload: bytes) -> None:
            direct = not p.done and self.now - p.start <= self.config.probe_timeout
            self._finish_probe(p, ok=True)
            if direct:
                # memberlist hands only a direct ack inside the probe timeout to its ping
                # delegate: that is the sample Serf's coordinates are built from.
                self.delegate.notify_ping_complete(node, self.now - p.start, payload)

        timer = self._at(p.deadline, lambda _n: self._ack_handlers.pop(seq, None))
        self._ack_handlers[seq] = (on_ack, timer)

        def on_nack() -> None:
            p.nacks += 1

        self._nack_handlers[seq] = on_nack
        if node.state == NodeStateKind.ALIVE:
            self.send_msg(node.address, ping.encode(), node.name)
        else:
            # Tell a suspect node it is suspected, so it can refute at once.
            s = Suspect(node.incarnation, node.name, self.name)
            self.send_msgs(node.address, [ping.encode(), s.encode()], node.name)
        self._at(now + self.config.probe_timeout, lambda n: self._probe_indirect(p, node, n))
        self._at(p.deadline, lambda n: self._probe_deadline(p))

    def _probe_indirect(self, p: _Probe, node: Node, now: float) -> None:
        if p.done:
            return
        peers = [
            n
            for n in self.nodes
            if n.name not in (self.name, node.name) and n.state == NodeStateKind.ALIVE
        ]
        k = min(self.config.indirect_checks, len(peers))
        for peer in self.rng.sample(peers, k):
            want_nack = peer.pmax >= 4
            if want_nack:
                p.expected_nacks += 1
            ind = IndirectPing(
                p.seq, node.addr, node.port, node.name, want_nack, self.addr, self.port, self.name
            )
            self.send_msg(peer.address, ind.encode(), peer.name)
        if not self.config.disable_tcp_pings and (node.pmax >= 3 or not node.vsn):
            p.tcp_pending = True
            ping = Ping(p.seq, node.name, self.addr, self.port, self.name)
            self._emit(StartTcpPing(p.seq, node.address, ping, p.deadline))

    def tcp_ping_result(
        self, seq: int, ok: bool, now: float | None = None, refused: bool = False
    ) -> None:
        """The TCP fallback's outcome; ``refused``: the target's host answered the connect
        with a reset (nothing listens on its gossip port)."""
        self._advance(now)
        p = self._probe
        if p is None or p.seq != seq or p.done:
            return
        p.tcp_pending = False
        p.tcp_ok = p.tcp_ok or ok
        if refused and not p.tcp_ok and self.config.refused_fails_probe:
            # No ack within the probe timeout and the host says no process listens there:
            # the agent is gone, so the probe fails now rather than at its deadline (up to
            # half a probe interval later; memberlist waits). Suspicion still takes its full
            # minimum timeout before anyone declares the node dead, and a live node refutes.
            self._finish_probe(p, ok=False)
            self._gossip_news()
            return
        if p.at_deadline:
            self._probe_deadline(p)
            self._gossip_news()

    def _probe_deadline(self, p: _Probe) -> None:
        if p.done:
            return
        p.at_deadline = True
        if p.tcp_ok:
            self._finish_probe(p, ok=True)
            return
        if p.tcp_pending:
            # The driver reports the TCP attempt by the same deadline; give it a moment.
            self._at(self.now + 0.25, lambda _n: self._tcp_grace(p))
            return
        self._finish_probe(p, ok=False)

    def _tcp_grace(self, p: _Probe) -> None:
        if not p.done:
            p.tcp_pending = False
            self._probe_deadline(p)

    def _finish_probe(self, p: _Probe, ok: bool) -> None:
        if p.done:
            return
        p.done = True
        self._nack_handlers.pop(p.seq, None)
        if self.metrics is not None:
            # One probe, ping to ack (or to giving up), in the core's clock.
            self.metrics.sample(
                "memberlist.probeNode", (self.now - p.start) * 1000.0, self.metric_labels
            )
        if ok:
            self.awareness.apply_delta(-1)
        else:
            if p.expected_nacks > 0:
                if p.nacks < p.expected_nacks:
                    self.awareness.apply_delta(p.expected_nacks - p.nacks)
            else:
                self.awareness.apply_delta(1)
            node = self.node_map.get(p.node)
            if node is not None:
                self.suspect_node(Suspect(node.incarnation, node.name, self.name))
        if self._probe is p:
            self._probe = None
        self._schedule_next_probe(max(p.start + self.config.probe_interval, self.now))

    # ---------------------------------------------------------------- gossip & push-pull

    def _run_gossip(self, now: float) -> None:
        if not self.running:
            return
        self._at(now + self.config.gossip_interval, self._run_gossip)
        m = self.metrics
        if m is None:
            self.gossip_once()
            return
        # memberlist's gossip timer: the work of one round, on the wall clock (the core's
        # clock does not move during it); recording only, it never steers the protocol.
        start = time.perf_counter()
        self.gossip_once()
        m.sample("memberlist.gossip", (time.perf_counter() - start) * 1000.0, self.metric_labels)

    def gossip_once(self) -> None:
        self._news = False  # any round carries the news queued so far
        pending = getattr(self.delegate, "has_broadcasts", None)
        if not self.broadcasts and pending is not None and not pending():
            return  # nothing to say: skip choosing targets
        targets = self._gossip_targets()
        if not targets:
            return
        avail = self.config.udp_buffer_size - wire.COMPOUND_HEADER_OVERHEAD - self.packet_overhead
        for node in targets:
            msgs = self._get_broadcasts(wire.COMPOUND_OVERHEAD, avail)
            if not msgs:
                return
            self._emit(SendPacket(node.address, msgs, node.pmax >= 5))

    def _gossip_targets(self) -> list[Node]:
        """Up to gossip_nodes distinct random peers worth gossiping to (alive, suspect, or
        dead for less than gossip_to_the_dead_time), chosen as memberlist's kRandomNodes does:
        at most 3 * n random draws, so a tick costs O(k), not O(n), in a large pool."""
        nodes = self.nodes
        n = len(nodes)
        k = self.config.gossip_nodes
        cutoff = self.now - self.config.gossip_to_the_dead_time
        chosen: list[Node] = []
        for _ in range(3 * n):
            if len(chosen) >= k:
                break
            node = nodes[int(self.rng.random() * n)]  # randrange is 5x slower
            if node.name == self.name or any(c is node for c in chosen):
                continue
            state = node.state
            if state in (NodeStateKind.ALIVE, NodeStateKind.SUSPECT) or (
                state == NodeStateKind.DEAD and node.state_change >= cutoff
            ):
                chosen.append(node)
        return chosen

    def _run_push_pull(self, now: float) -> None:
        if not self.running:
            return
        n = self.num_nodes()
        self._at(now + push_pull_scale(self.config.push_pull_interval, n), self._run_push_pull)
        alive = [x for x in self.nodes if x.name != self.name and x.state == NodeStateKind.ALIVE]
        if alive:
            self._emit(StartPushPull(self.rng.choice(alive).address, join=False))

    def local_push_pull(self, join: bool) -> PushPull:
        nodes = [
            PushNodeState(n.name, n.addr, n.port, n.meta, n.incarnation, int(n.state), n.vsn)
            for n in self.nodes
        ]
        return PushPull(join, nodes, self.delegate.local_state(join))

    def merge_remote(self, pp: PushPull, now: float | None = None) -> None:
        """Merge a peer's full state; raises VersionMismatch to refuse it (fails a join)."""
        self._advance(now)
        self._verify_protocol(pp.nodes)
        known = len(self.node_map)
        for r in pp.nodes:
            if len(r.addr) not in (4, 16):
                continue
            if r.state == NodeStateKind.ALIVE:
                self.alive_node(
                    Alive(r.incarnation, r.name, r.addr, r.port, r.meta, r.vsn),
                    None,
                    bootstrap=False,
                )
            elif r.state == NodeStateKind.LEFT:
                self.dead_node(Dead(r.incarnation, r.name, r.name))
            else:
                # Dead is only suspected: we may still be able to reach it ourselves.
                self.suspect_node(Suspect(r.incarnation, r.name, self.name))
        if pp.user_state:
            self.delegate.merge_remote_state(pp.user_state, pp.join)
        if pp.join and self.running and len(self.node_map) > known:
            # A join exchange brought news (the newcomer, on the side that answered it; the
            # pool, on the newcomer's): gossip it now rather than at the next tick. The same
            # messages, each sent as often; the pool hears of the newcomer sooner.
            self.gossip_once()
        self._gossip_news()

    def _verify_protocol(self, remote: list[PushNodeState]) -> None:
        vs = [r.vsn for r in remote if len(r.vsn) >= 6 and r.state == NodeStateKind.ALIVE]
        vs += [n.vsn for n in self.nodes if len(n.vsn) >= 6 and n.state == NodeStateKind.ALIVE]
        if not vs:
            return
        maxpmin = max(v[0] for v in vs)
        minpmax = min(v[1] for v in vs)
        maxdmin = max(v[3] for v in vs)
        mindmax = min(v[4] for v in vs)
        for r in remote:
            if len(r.vsn) < 6 or r.state != NodeStateKind.ALIVE:
                continue
            if not (maxpmin <= r.vsn[2] <= minpmax):
                raise VersionMismatch(
                    f"node {r.name!r} uses protocol version {r.vsn[2]}, cannot interoperate "
                    f"(compatible range {maxpmin}..{minpmax})"
                )
            if not (maxdmin <= r.vsn[5] <= mindmax):
                raise VersionMismatch(
                    f"node {r.name!r} uses delegate protocol version {r.vsn[5]}, cannot "
                    f"interoperate (compatible range {maxdmin}..{mindmax})"
                )

    # ---------------------------------------------------------------- state transitions

    def _refute(self, me: Node, accused: int) -> None:
        inc = self.next_incarnation()
        if accused >= inc:
            inc = self._skip_incarnation(accused - inc + 1)
        me.incarnation = inc
        self.awareness.apply_delta(1)
        a = Alive(inc, me.name, me.addr, me.port, me.meta, me.vsn)
        self._broadcast(me.name, a.encode())
        self._news = True

    def alive_node(self, a: Alive, notify: Callable[[], None] | None, bootstrap: bool) -> None:
        if self.leaving and a.node == self.name:
            return
        if len(a.vsn) >= 3 and (a.vsn[0] == 0 or a.vsn[1] == 0 or a.vsn[0] > a.vsn[1]):
            return
        state = self.node_map.get(a.node)
        updates_node = False
        if state is None:
            state = Node(
                sys.intern(a.node),
                shared(a.addr),
                a.port,
                shared(a.meta),
                shared(a.vsn),
                0,
                NodeStateKind.DEAD,
                self.now,
            )
            self.node_map[a.node] = state
            self.nodes.append(state)
            i = int(self.rng.random() * len(self.nodes))  # randrange is 5x slower
            self.nodes[i], self.nodes[-1] = self.nodes[-1], self.nodes[i]
        elif state.addr != a.addr or state.port != a.port:
            can_reclaim = (
                self.config.dead_node_reclaim_time > 0
                and self.now - state.state_change > self.config.dead_node_reclaim_time
            )
            if state.state == NodeStateKind.LEFT or (
                state.state == NodeStateKind.DEAD and can_reclaim
            ):
                updates_node = True
            else:
                other = Node(
                    a.node,
                    a.addr,
                    a.port,
                    a.meta,
                    a.vsn,
                    a.incarnation,
                    NodeStateKind.ALIVE,
                    self.now,
                )
                self.delegate.notify_conflict(state.copy(), other)
                return
        is_local = state.name == self.name
        if a.incarnation <= state.incarnation and not is_local and not updates_node:
            return
        if a.incarnation < state.incarnation and is_local:
            return
        s = self._suspicions.pop(a.node, None)
        if s is not None and s.timer is not None:
            s.timer.cancel()
        old_state = state.state
        old_meta = state.meta
        if not bootstrap and is_local:
            if a.incarnation == state.incarnation and a.meta == state.meta and (a.vsn == state.vsn):
                return
            self._refute(state, a.incarnation)
            return
        self._broadcast(a.node, a.encode(), notify)
        if old_state == NodeStateKind.SUSPECT:
            self._news = True  # a refutation: relay it before more members declare it dead
        state.incarnation = a.incarnation
        if state.meta != a.meta:
            state.meta = shared(a.meta)
        if state.addr != a.addr:
            state.addr = shared(a.addr)
        state.port = a.port
        if a.vsn and state.vsn != a.vsn:
            state.vsn = shared(a.vsn)
        if state.state != NodeStateKind.ALIVE:
            state.state = NodeStateKind.ALIVE
            state.state_change = self.now
        if self.metrics is not None:
            self.metrics.incr("memberlist.msg.alive", 1.0, self.metric_labels)
        if old_state in (NodeStateKind.DEAD, NodeStateKind.LEFT):
            self.delegate.notify_join(state.copy())
        elif old_meta != state.meta:
            self.delegate.notify_update(state.copy())

    def suspect_node(self, s: Suspect) -> None:
        state = self.node_map.get(s.node)
        if state is None or s.incarnation < state.incarnation:
            return
        existing = self._suspicions.get(s.node)
        if existing is not None:
            if existing.confirm(s.from_, self.now):
                self._broadcast(s.node, s.encode())
                self._news = True
                self._arm_suspicion(s.node, existing)
            return
        if state.state != NodeStateKind.ALIVE:
            return
        if state.name == self.name:
            self._refute(state, s.incarnation)
            return
        self._broadcast(s.node, s.encode())
        self._news = True
        if self.metrics is not None:
            self.metrics.incr("memberlist.msg.suspect", 1.0, self.metric_labels)
        state.incarnation = s.incarnation
        state.state = NodeStateKind.SUSPECT
        change = self.now
        state.state_change = change
        k = self.config.suspicion_mult - 2
        n = self.num_nodes()
        if n - 2 < k:
            k = 0
        lo = suspicion_timeout(self.config.suspicion_mult, n, self.config.probe_interval)
        hi = self.config.suspicion_max_timeout_mult * lo
        susp = Suspicion(s.from_, k, lo, hi, self.now)
        self._suspicions[s.node] = susp
        self._arm_suspicion(s.node, susp, change)

    def _arm_suspicion(self, node: str, susp: Suspicion, change: float | None = None) -> None:
        if susp.timer is not None:
            susp.timer.cancel()
        if change is None:
            st = self.node_map.get(node)
            change = st.state_change if st is not None else self.now

        def fire(_now: float) -> None:
            if self._suspicions.get(node) is not susp:
                return
            del self._suspicions[node]
            st = self.node_map.get(node)
            if st is not None and st.state == NodeStateKind.SUSPECT and (st.state_change == change):
                if susp.k > 0 and susp.n < susp.k and self.metrics is not None:
                    # Declared dead with fewer independent confirmations than expected.
                    self.metrics.incr("memberlist.degraded.timeout", 1.0, self.metric_labels)
                self.dead_node(Dead(st.incarnation, node, self.name))

        susp.timer = self._at(susp.deadline, fire)

    def dead_node(self, d: Dead, notify: Callable[[], None] | None = None) -> None:
        state = self.node_map.get(d.node)
        if state is None or d.incarnation < state.incarnation:
            return
        s = self._suspicions.pop(d.node, None)
        if s is not None and s.timer is not None:
            s.timer.cancel()
        if state.dead_or_left():
            if notify is not None:
                notify()
            return
        if state.name == self.name:
            if not self.leaving:
                self._refute(state, d.incarnation)
                return
            self._broadcast(d.node, d.encode(), notify)
        else:
            self._broadcast(d.node, d.encode(), notify)
        self._news = True
        if self.metrics is not None:
            self.metrics.incr("memberlist.msg.dead", 1.0, self.metric_labels)
        state.incarnation = d.incarnation
        state.state = NodeStateKind.LEFT if d.node == d.from_ else NodeStateKind.DEAD
        state.state_change = self.now
        self.delegate.notify_leave(state.copy())
