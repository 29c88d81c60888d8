"""Deterministic discrete-event simulation of many SWIM cores on a lossy network.

Why: failure detection is probabilistic and timing-dependent; the only way to test it at 100+
members, under loss, delays and partitions, fast and reproducibly, is to run the real
sans-I/O cores against a simulated clock and a seeded RNG. Nothing here touches a socket.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.events import MemberEvent, MemberStatus
from consulpy.gossip.messages import NodeStateKind
from consulpy.gossip.serf_core import SerfCore, SerfTimings
from consulpy.gossip.swim import (
    Addr,
    PushPull,
    SendPacket,
    StartPushPull,
    StartTcpPing,
    SwimCore,
)
from consulpy.gossip.wire import encode_push_pull


@dataclass
class NetworkModel:
    """Loss applies to each UDP packet; latency is uniform in [min, max] seconds."""

    loss: float = 0.0
    latency_min: float = 0.001
    latency_max: float = 0.005
    # Pairs of groups that cannot talk (both directions), by node index.
    partitions: list[tuple[frozenset[int], frozenset[int]]] = field(default_factory=list)
    # One-way latency per pair of node indexes, when set (known-latency networks for the
    # coordinate tests); jitter then is uniform in [0, jitter] on top.
    pair_latency: Callable[[int, int], float] | None = None
    jitter: float = 0.0


class Simulation:
    """Each member is a full SerfCore (with its SwimCore as ``cores[i]``)."""

    def __init__(
        self,
        n: int,
        seed: int,
        config: MemberlistConfig | None = None,
        net: NetworkModel | None = None,
        timings: SerfTimings | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.config = config or MemberlistConfig.lan()
        self.timings = timings or SerfTimings()
        self.serfs: list[SerfCore] = []
        self.net = net or NetworkModel()
        self.now = 0.0
        # (time, observer index, event type, member name, member status)
        self.log: list[tuple[float, int, str, str, MemberStatus]] = []
        self.cores: list[SwimCore] = []
        self.crashed: set[int] = set()
        self.addr_index: dict[Addr, int] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._wake: list[float | None] = []
        self.packets_sent = 0
        self.packets_lost = 0
        # Payload bytes sent (UDP: the plain messages; push-pull: the encoded TCP exchange,
        # both directions, counted only while `count_push_pull` is set, since encoding a
        # large pool's state costs the simulation time).
        self.udp_bytes = 0
        self.push_pulls = 0
        self.push_pull_bytes = 0
        self.count_push_pull = False
        for i in range(n):
            self.add_node(i)

    # ------------------------------------------------------------ setup

    @staticmethod
    def addr_of(i: int) -> Addr:
        return (f"127.1.{i // 250}.{i % 250 + 1}", 7946)

    def add_node(self, i: int) -> SwimCore:
        host, port = self.addr_of(i)
        serf = SerfCore(
            f"node-{i}",
            host,
            port,
            {"idx": str(i)},
            self.config,
            self.timings,
            None,
            random.Random(self.rng.random()),
            self.now,
        )
        if i < len(self.cores):
            self.cores[i] = serf.ml
            self.serfs[i] = serf
        else:
            self.cores.append(serf.ml)
            self.serfs.append(serf)
            self._wake.append(None)
        self.addr_index[(host, port)] = i
        return serf.ml

    def start(self, i: int) -> None:
        self.crashed.discard(i)
        self.serfs[i].start(self.now)
        self._after_touch(i)

    def leave(self, i: int) -> None:
        """Graceful leave: Serf's leave intent, then memberlist's dead-about-self."""
        serf = self.serfs[i]
        serf.begin_leave(lambda: None)
        serf.ml.leave(lambda: None)
        self._after_touch(i)

    def restart(self, i: int) -> SwimCore:
        """A crashed node comes back as a fresh process (incarnation restarts low)."""
        self.crashed.add(i)
        core = self.add_node(i)
        self._wake[i] = None
        self.start(i)
        return core

    def seed_converged(self, members: list[int]) -> None:
        """Start `members` as a pool that formed long ago: each merges everybody's state at
        once (as from a push-pull), its event log and gossip queues left empty. Why: forming
        a 1,000-member pool by joins costs the simulation N^2 retransmitted alive messages;
        steady-state measurements (a join, a crash, the traffic) do not need that history."""
        for i in members:
            self.start(i)
        everyone = [n for i in members for n in self.cores[i].local_push_pull(False).nodes]
        state = PushPull(False, everyone)
        for i in members:
            serf = self.serfs[i]
            self.cores[i].merge_remote(state, self.now)
            # Drop this member's join news at once: held until every member merged, the
            # queues and event lists would cost N^2 broadcasts (5 GB at 5,000 members).
            serf.events.clear()
            for queue in (
                self.cores[i].broadcasts,
                serf.intent_queue,
                serf.event_queue,
                serf.query_queue,
            ):
                queue.reset()
            self._after_touch(i)
        self.log.clear()

    def crash(self, i: int) -> None:
        """The member's process dies (its host stays up and refuses connects to it)."""
        self.crashed.add(i)
        self.cores[i].stop()

    def join(self, i: int, j: int) -> None:
        self._push_pull(i, self.addr_of(j), join=True)

    def status(self, i: int, name: str) -> MemberStatus | None:
        """Serf's view: member status of ``name`` as seen by member ``i``."""
        ms = self.serfs[i].members.get(name)
        return None if ms is None else ms.member.status

    def partition(self, a: set[int], b: set[int]) -> None:
        self.net.partitions.append((frozenset(a), frozenset(b)))

    def heal(self) -> None:
        self.net.partitions.clear()

    # ------------------------------------------------------------ running

    def _schedule(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, fn))

    def _after_touch(self, i: int) -> None:
        if i in self.crashed:
            return
        core = self.cores[i]
        serf = self.serfs[i]
        for ev in serf.events:
            if isinstance(ev, MemberEvent):
                for m in ev.members:
                    self.log.append((self.now, i, ev.type.value, m.name, m.status))
        serf.events.clear()
        for e in core.pop_effects():
            self._apply(i, e)
        d = core.next_deadline()
        if d is not None and d != self._wake[i]:
            self._wake[i] = d
            self._schedule(d, lambda i=i, d=d: self._wake_core(i, d))

    def _wake_core(self, i: int, d: float) -> None:
        if self._wake[i] != d or i in self.crashed:
            return
        self._wake[i] = None
        self.cores[i].tick(self.now)
        self._after_touch(i)

    def blocked(self, a: int, b: int) -> bool:
        return any((a in x and b in y) or (a in y and b in x) for x, y in self.net.partitions)

    def _latency(self, a: int | None = None, b: int | None = None) -> float:
        if self.net.pair_latency is not None and a is not None and b is not None:
            return self.net.pair_latency(a, b) + self.rng.uniform(0.0, self.net.jitter)
        return self.rng.uniform(self.net.latency_min, self.net.latency_max)

    def _apply(self, i: int, e: object) -> None:
        if isinstance(e, SendPacket):
            j = self.addr_index.get(e.addr)
            self.packets_sent += 1
            self.udp_bytes += sum(len(m) for m in e.msgs)
            if j is None or self.blocked(i, j) or self.rng.random() < self.net.loss:
                self.packets_lost += 1
                return
            frm = self.addr_of(i)
            msgs = e.msgs

            def deliver(j: int = j) -> None:
                if j in self.crashed:
                    return
                self.cores[j].handle_packet(frm, msgs, self.now)
                self._after_touch(j)

            self._schedule(self.now + self._latency(i, j), deliver)
        elif isinstance(e, StartPushPull):
            self._push_pull(i, e.addr, e.join)
        elif isinstance(e, StartTcpPing):
            j = self.addr_index.get(e.addr)
            ok = (
                j is not None
                and not self.blocked(i, j)
                and j not in self.crashed
                and (not e.ping.node or self.cores[j].name == e.ping.node)
            )
            # A crashed member is a dead process on a live host: the host refuses the
            # connect after one round trip. (A host that vanished is a partition.)
            refused = j is not None and not self.blocked(i, j) and j in self.crashed
            rtt = 2 * self._latency()
            answered = (ok or refused) and self.now + rtt < e.deadline
            when = self.now + rtt if answered else e.deadline
            seq = e.seq

            def result(ok: bool = ok and answered, refused: bool = refused and answered) -> None:
                if i in self.crashed:
                    return
                self.cores[i].tcp_ping_result(seq, ok, self.now, refused)
                self._after_touch(i)

            self._schedule(when, result)

    def _push_pull(self, i: int, addr: Addr, join: bool) -> None:
        j = self.addr_index.get(addr)
        if j is None or self.blocked(i, j):
            return
        lat = self._latency()

        def at_responder(j: int = j) -> None:
            if j in self.crashed or i in self.crashed:
                return
            mine = self.cores[i].local_push_pull(join)
            theirs = self.cores[j].local_push_pull(join)
            self.push_pulls += 1
            if self.count_push_pull:
                self.push_pull_bytes += len(encode_push_pull(mine)) + len(encode_push_pull(theirs))
            self.cores[j].merge_remote(mine, self.now)
            self._after_touch(j)

            def at_initiator() -> None:
                if i in self.crashed:
                    return
                self.cores[i].merge_remote(theirs, self.now)
                if join:
                    self.serfs[i].after_join()
                self._after_touch(i)

            self._schedule(self.now + self._latency(), at_initiator)

        self._schedule(self.now + lat, at_responder)

    def run_until(self, t: float) -> None:
        while self._events and self._events[0][0] <= t:
            when, _, fn = heapq.heappop(self._events)
            self.now = max(self.now, when)
            fn()
        self.now = max(self.now, t)

    def run_until_true(
        self, cond: Callable[[], bool], limit: float, step: float = 0.1
    ) -> float | None:
        """Advance in small steps until ``cond()``; return the time, or None at ``limit``."""
        while self.now < limit:
            if cond():
                return self.now
            self.run_until(min(self.now + step, limit))
        return self.now if cond() else None

    # ------------------------------------------------------------ observation

    def view(self, i: int, name: str) -> NodeStateKind | None:
        n = self.cores[i].node_map.get(name)
        return None if n is None else n.state

    def live(self) -> list[int]:
        return [i for i in range(len(self.cores)) if i not in self.crashed]

    def all_status(
        self, name: str, states: set[MemberStatus | None], among: list[int] | None = None
    ) -> bool:
        return all(
            self.status(i, name) in states
            for i in (among or self.live())
            if self.cores[i].name != name
        )

    def all_see(
        self, name: str, states: set[NodeStateKind | None], among: list[int] | None = None
    ) -> bool:
        return all(
            self.view(i, name) in states
            for i in (among or self.live())
            if self.cores[i].name != name
        )

    def converged(self, among: list[int] | None = None) -> bool:
        """Every member in ``among`` sees every other one alive."""
        group = among or self.live()
        names = [self.cores[i].name for i in group]
        return all(self.view(i, n) == NodeStateKind.ALIVE for i in group for n in names)
