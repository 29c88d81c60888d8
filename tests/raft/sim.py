"""Seeded discrete-event simulation of a Raft cluster built from RaftCore.

The network drops, delays, reorders and duplicates messages and can be partitioned; nodes crash
(losing everything not yet persisted: queued persistence jobs and unsent messages) and restart
from their durable stores (MemoryLogStore + MemorySnapshotStore, the same semantics as SQLite and
the snapshot files). The harness drives the cores exactly as node.py does: messages_now leave at
once, persistence jobs complete in order after a delay, messages_after leave only then.

After every Ready it checks election safety, log matching, leader completeness and state machine
safety; at the end the KV history the clients saw must be linearizable, and after healing the
cluster must make progress again. Run one seed with `python -m tests.raft.sim SEED [-v]`.
"""

from __future__ import annotations

import heapq
import random
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgpack

from consulpy.raft.config import RaftConfig
from consulpy.raft.core import PersistentState, RaftCore, Ready, Role
from consulpy.raft.errors import NotLeader, RaftError
from consulpy.raft.snapshot_store import MemorySnapshotStore
from consulpy.raft.storage import MemoryLogStore, PersistBatch
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    Message,
    Server,
    Snapshot,
    SnapshotMeta,
    decode_message,
    encode_message,
)
from tests.raft.linearizability import INF, CheckerGaveUp, Op, check_history

TICK = 10  # time units per tick
CLIENT_TIMEOUT = 400


class InvariantViolation(AssertionError):
    pass


@dataclass
class SimParams:
    nodes: int = 5
    initial_voters: int = 3
    duration: int = 6000
    settle: int = 4000
    clients: int = 4
    keys: int = 4
    max_delay: int = 8
    persist_delay: int = 6
    drop_rate: float = 0.05
    dup_rate: float = 0.03
    crash_every: int = 700  # mean time between crashes (0 = none)
    partition_every: int = 900
    membership_every: int = 800
    transfer_every: int = 1500
    pause_every: int = 800
    lease_reads: bool = True
    snapshot_every: int = 25
    trailing: int = 5
    chunk_size: int = 48
    codec_every: int = 7  # round-trip every Nth message through the wire codec

    @staticmethod
    def random(rng: random.Random) -> SimParams:
        p = SimParams()
        p.drop_rate = rng.choice([0.0, 0.02, 0.08, 0.15])
        p.dup_rate = rng.choice([0.0, 0.03, 0.1])
        p.max_delay = rng.choice([2, 8, 20])
        p.persist_delay = rng.choice([1, 6, 15])
        p.crash_every = rng.choice([0, 400, 900])
        p.partition_every = rng.choice([0, 600, 1200])
        p.membership_every = rng.choice([0, 500, 1000])
        p.pause_every = rng.choice([0, 400, 1000])
        p.snapshot_every = rng.choice([10, 25, 1000])
        p.trailing = rng.choice([0, 3, 20])
        return p


@dataclass
class Job:
    batch: PersistBatch
    mark: tuple[int, int] | None
    after: list[Message]
    snapshot: Snapshot | None = None  # file to write before the batch
    compacted: Snapshot | None = None  # local snapshot: compact the core once durable


@dataclass
class SimNode:
    id: str
    period: int = TICK  # this node's tick period: clocks drift by up to 10%
    paused_until: int = 0  # a stalled process (GC pause, overloaded host) handles nothing
    last_tick: int = 0
    seen_commit: int = 0
    log_store: MemoryLogStore = field(default_factory=MemoryLogStore)
    snap_store: MemorySnapshotStore = field(default_factory=lambda: MemorySnapshotStore(2))
    core: RaftCore | None = None
    incarnation: int = 0
    jobs: deque[Job] = field(default_factory=deque)
    group: list[Job] = field(default_factory=list)  # the transaction being persisted
    persisting: bool = False
    kv: dict[str, str] = field(default_factory=dict)
    applied: int = 0
    last_snapshot: int = 0
    snapshot_pending: bool = False
    pending_writes: dict[int, tuple[int, int]] = field(default_factory=dict)  # index->(term, op)
    pending_reads: dict[int, int] = field(default_factory=dict)  # ctx -> op id
    waiting_reads: list[tuple[int, int]] = field(default_factory=list)  # (index, op id)
    role: Role | None = None
    term: int = 0

    @property
    def up(self) -> bool:
        return self.core is not None


class Sim:
    def __init__(self, seed: int, params: SimParams | None = None, verbose: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.p = params if params is not None else SimParams.random(random.Random(seed ^ 0x5EED))
        self.verbose = verbose
        self.time = 0
        self._seq = 0
        self._queue: list[tuple[int, int, str, tuple]] = []
        self.ids = [f"n{i + 1}" for i in range(self.p.nodes)]
        self.nodes = {i: SimNode(i, period=self.rng.choice((9, 10, 11))) for i in self.ids}
        self.cuts: set[frozenset[str]] = set()
        self.faults = True
        # Invariant bookkeeping.
        self.leaders: dict[int, str] = {}
        self.seen: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        self.committed: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, kind, data)
        self.commit_terms: dict[int, int] = {}
        # Client bookkeeping.
        self.ops: dict[int, Op] = {}
        self.history: list[Op] = []
        self.client_busy: dict[int, int | None] = {}
        self.client_hint: dict[int, str | None] = {}
        self._op_ids = 0
        self._read_ctx = 0
        self.stats = {
            "messages": 0,
            "crashes": 0,
            "partitions": 0,
            "conf_changes": 0,
            "transfers": 0,
            "snapshots_installed": 0,
            "snapshots_wanted": 0,
            "events": 0,
            "lease_reads": 0,
            "pauses": 0,
        }

    # ---------------------------------------------------------------- plumbing

    def log(self, *args: Any) -> None:
        if self.verbose:
            print(f"[{self.time:6d}]", *args)

    def at(self, delay: int, kind: str, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.time + max(0, delay), self._seq, kind, args))

    def now(self) -> float:
        """A strictly increasing clock for the history: the global event sequence."""
        self._seq += 1
        return float(self._seq)

    def raft_config(self, node_id: str) -> RaftConfig:
        return RaftConfig(
            id=node_id,
            address=f"sim://{node_id}",
            heartbeat_ticks=1,
            election_ticks=10,
            lease_ticks=6,
            max_entries_per_msg=8,
            max_bytes_per_msg=512,
            max_inflight=4,
            snapshot_chunk_size=self.p.chunk_size,
            # Odd seeds defer commit notices (told at the next tick, as node.py's timer would).
            commit_notice_delay=1.0 if self.seed % 2 else 0.0,
            # Entries released from memory at once, soon, or (mostly) kept: by seed, so the
            # random parameters' draws stay as they were.
            memory_trailing_entries=(0, 2, 1024)[self.seed % 3],
        )

    def new_core(self, node: SimNode) -> RaftCore:
        stored = node.log_store.load()
        snap = None
        if stored.snapshot is not None:
            snap = node.snap_store.load(stored.snapshot.index, stored.snapshot.term)
            if snap is None:
                raise InvariantViolation(f"{node.id}: recorded snapshot file missing")
        state = PersistentState(stored.hard_state, snap, stored.entries)
        core = RaftCore(self.raft_config(node.id), random.Random(self.rng.random()), state)
        node.kv = {}
        node.applied = 0
        if snap is not None:
            node.kv = dict(msgpack.unpackb(snap.data))
            node.applied = snap.meta.index
        node.last_snapshot = node.applied
        return core

    # ---------------------------------------------------------------- run

    def run(self) -> None:
        voters = self.ids[: self.p.initial_voters]
        conf = Configuration(tuple(Server(i, f"sim://{i}") for i in voters))
        for nid in self.ids:
            node = self.nodes[nid]
            node.core = self.new_core(node)
            if nid in voters:
                node.core.bootstrap(conf)
                self.process(node)
            self.at(self.rng.randrange(TICK), "tick", nid, node.incarnation)
        for c in range(self.p.clients):
            self.client_busy[c] = None
            self.client_hint[c] = None
            self.at(self.rng.randrange(50), "client_next", c)
        if self.p.crash_every:
            self.at(self.rng.randrange(self.p.crash_every), "crash")
        if self.p.partition_every:
            self.at(self.rng.randrange(self.p.partition_every), "partition")
        if self.p.membership_every:
            self.at(self.rng.randrange(self.p.membership_every), "membership")
        if self.p.transfer_every:
            self.at(self.rng.randrange(self.p.transfer_every), "transfer")
        if self.p.pause_every:
            self.at(self.rng.randrange(self.p.pause_every), "pause")
        self.at(self.p.duration, "heal")
        end = self.p.duration + self.p.settle
        while self._queue and self._queue[0][0] <= end:
            t, _, kind, args = heapq.heappop(self._queue)
            self.time = t
            self.stats["events"] += 1
            getattr(self, "ev_" + kind)(*args)
        self.finish()

    def finish(self) -> None:
        for op in self.ops.values():
            if op.ret == INF and op.kind == "get":
                continue
            self.history.append(op)
        # Drop reads that never completed: a read has no effect.
        self.history = [op for op in self.history if not (op.kind == "get" and op.ret == INF)]
        try:
            ok, key = check_history(self.history)
        except CheckerGaveUp as exc:
            raise InvariantViolation(f"linearizability check inconclusive: {exc}") from exc
        if not ok:
            raise InvariantViolation(f"history for key {key!r} is not linearizable")
        if self.final_op is None or self.final_op.ret == INF:
            for n in self.nodes.values():
                c = n.core
                if c is not None:
                    self.log(
                        n.id,
                        c.role,
                        "term",
                        c.term,
                        "lead",
                        c.lead,
                        "vote",
                        c.vote,
                        "commit",
                        c.commit,
                        "last",
                        c.log.last_index,
                        c.log.last_term,
                        "voters",
                        c.configuration.voters(),
                        "conf@",
                        c.configuration_index,
                        {k: (p.state.value, p.match, p.next) for k, p in c.progress.items()},
                    )
            raise InvariantViolation("no progress after the network healed (liveness)")

    # ---------------------------------------------------------------- events

    def deferred(self, node: SimNode, kind: str, *args: Any) -> bool:
        """If the node is paused, re-queue the event for a random moment after it resumes."""
        if node.paused_until > self.time:
            self._seq += 1
            heapq.heappush(
                self._queue,
                (node.paused_until + self.rng.randrange(6), self._seq, kind, args),
            )
            return True
        return False

    def ev_tick(self, nid: str, inc: int) -> None:
        node = self.nodes[nid]
        if node.incarnation != inc or node.core is None:
            return
        if self.deferred(node, "tick", nid, inc):
            return
        # Like node.py's ticker: catch up missed ticks after a stall, within reason.
        missed = (self.time - node.last_tick) // node.period if node.last_tick else 1
        for _ in range(max(1, min(missed, 2 * 10))):
            node.core.tick()
        if node.core.commit_notice_pending:
            node.core.notify_commit()
        node.last_tick = self.time
        self.process(node)
        self.at(node.period, "tick", nid, inc)

    def ev_pause(self) -> None:
        if not self.faults:
            return
        live = [n for n in self.nodes.values() if n.up]
        if live:
            node = self.rng.choice(live)
            node.paused_until = self.time + 30 + self.rng.randrange(300)
            self.stats["pauses"] += 1
            self.log("pause", node.id, "until", node.paused_until)
        self.at(self.rng.randrange(2 * self.p.pause_every), "pause")

    def send(self, m: Message) -> None:
        self.stats["messages"] += 1
        if self.stats["messages"] % self.p.codec_every == 0:
            m = decode_message(msgpack.unpackb(msgpack.packb(encode_message(m))))
        if self.faults and self.rng.random() < self.p.drop_rate:
            return
        if self.cut(m.src, m.dst):
            return
        copies = 2 if self.faults and self.rng.random() < self.p.dup_rate else 1
        for _ in range(copies):
            self.at(1 + self.rng.randrange(self.p.max_delay), "deliver", m)

    def cut(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.cuts

    def ev_deliver(self, m: Message) -> None:
        node = self.nodes[m.dst]
        if node.core is None or self.cut(m.src, m.dst):
            return
        if self.deferred(node, "deliver", m):
            return
        node.core.step(m)
        self.process(node)

    def ev_persist_done(self, nid: str, inc: int) -> None:
        node = self.nodes[nid]
        if node.incarnation != inc or node.core is None:
            return
        if self.deferred(node, "persist_done", nid, inc):
            return
        group, node.group = node.group, []
        # The whole group is one transaction (group commit), as in node.py.
        for job in group:
            if job.snapshot is not None:
                node.snap_store.save(job.snapshot)
        node.log_store.save([job.batch for job in group])
        for job in group:
            for m in job.after:
                self.send(m)
            if job.mark is not None:
                node.core.on_persisted(*job.mark)
            if job.compacted is not None:
                node.core.compact(job.compacted, self.p.trailing)
                node.snapshot_pending = False
        node.persisting = False
        self.kick_persist(node)
        self.process(node)

    def kick_persist(self, node: SimNode) -> None:
        if node.jobs and not node.persisting:
            node.persisting = True
            node.group = list(node.jobs)
            node.jobs.clear()
            self.at(
                1 + self.rng.randrange(self.p.persist_delay),
                "persist_done",
                node.id,
                node.incarnation,
            )

    def ev_crash(self) -> None:
        if self.faults:
            live = [n for n in self.nodes.values() if n.up]
            if live:
                # Prefer a node with writes in flight to its disk: that is where loss hides.
                busy = [n for n in live if n.jobs or n.group]
                node = self.rng.choice(busy if busy and self.rng.random() < 0.6 else live)
                self.log("crash", node.id)
                self.stats["crashes"] += 1
                self.crash(node)
                self.at(20 + self.rng.randrange(300), "restart", node.id)
                if self.rng.random() < 0.3:
                    self.at(5 + self.rng.randrange(60), "crash_leader")  # correlated failure
            self.at(self.rng.randrange(2 * self.p.crash_every), "crash")

    def ev_crash_leader(self) -> None:
        leader = self.current_leader()
        if self.faults and leader is not None:
            self.log("crash leader", leader.id)
            self.stats["crashes"] += 1
            self.crash(leader)
            self.at(20 + self.rng.randrange(300), "restart", leader.id)

    def crash(self, node: SimNode) -> None:
        node.core = None
        node.incarnation += 1
        node.jobs.clear()
        node.group = []
        node.persisting = False
        node.snapshot_pending = False
        node.pending_writes.clear()
        node.pending_reads.clear()
        node.waiting_reads.clear()
        node.role = None
        node.seen_commit = 0

    def ev_restart(self, nid: str) -> None:
        node = self.nodes[nid]
        if node.up:
            return
        self.log("restart", nid)
        node.core = self.new_core(node)
        node.last_tick = 0
        node.paused_until = 0
        self.at(self.rng.randrange(TICK), "tick", nid, node.incarnation)
        self.process(node)

    def ev_partition(self) -> None:
        if not self.faults:
            return
        if not self.cuts:
            self.cuts = self.random_cuts()
            self.stats["partitions"] += 1
            self.log("partition", sorted(tuple(sorted(c)) for c in self.cuts))
            self.at(100 + self.rng.randrange(self.p.partition_every), "partition")
        else:
            self.cuts = set()
            self.log("heal partition")
            self.at(self.rng.randrange(self.p.partition_every), "partition")

    def random_cuts(self) -> set[frozenset[str]]:
        """Symmetric splits, but also non-transitive ones (A-B and B-C up, A-C down), which
        is where leases and elections get interesting."""
        ids = self.ids
        pairs = [frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1 :]]
        kind = self.rng.choice(["split", "links", "isolate", "isolate", "bridge"])
        if kind == "links":
            return {p for p in pairs if self.rng.random() < 0.35}
        if kind == "isolate":
            leader = self.current_leader()
            x = leader.id if leader is not None and self.rng.random() < 0.7 else None
            x = x or self.rng.choice(ids)
            return {p for p in pairs if x in p}
        side = {i: self.rng.randrange(2) for i in ids}
        bridge = self.rng.choice(ids) if kind == "bridge" else None
        return {
            p
            for p in pairs
            if len({side[i] for i in p}) == 2 and (bridge is None or bridge not in p)
        }

    def ev_heal(self) -> None:
        self.log("heal: faults off")
        self.faults = False
        self.cuts = set()
        for nid in self.ids:
            if not self.nodes[nid].up:
                self.ev_restart(nid)
        self.final_op = None
        self.at(50, "final_write")

    final_op: Op | None = None

    def ev_final_write(self) -> None:
        # A fresh client keeps trying one write until it succeeds: the liveness check.
        if self.final_op is not None and self.final_op.ret != INF:
            return
        if self.final_op is None:
            self._op_ids += 1
            self.final_op = Op(self._op_ids, -1, "put", "final", "done", self.now())
            self.ops[self.final_op.id] = self.final_op
        for node in self.nodes.values():
            if node.core is not None and node.core.is_leader:
                try:
                    idx, term = node.core.propose(self.encode_put(self.final_op))
                    node.pending_writes[idx] = (term, self.final_op.id)
                    self.process(node)
                except RaftError:
                    pass
                break
        self.at(300, "final_write")

    def ev_membership(self) -> None:
        if self.faults:
            self.at(self.rng.randrange(2 * self.p.membership_every), "membership")
        leader = self.current_leader()
        if leader is None or leader.core is None:
            return
        core = leader.core
        conf = core.configuration
        voters = conf.voters()
        members = conf.ids()
        outsiders = [i for i in self.ids if i not in members]
        nonvoters = [i for i in members if i not in voters]
        choices = []
        if outsiders and len(voters) < 5:
            choices += ["add_voter", "add_nonvoter"]
        if nonvoters:
            choices += ["promote", "remove_nonvoter"]
        if len(voters) > 3:
            choices += ["remove_voter", "remove_voter"]
        if not choices:
            return
        what = self.rng.choice(choices)
        try:
            if what == "add_voter":
                target = self.rng.choice(outsiders)
                core.change_config("add_voter", target, f"sim://{target}")
            elif what == "add_nonvoter":
                target = self.rng.choice(outsiders)
                core.change_config("add_nonvoter", target, f"sim://{target}")
            elif what == "promote":
                target = self.rng.choice(nonvoters)
                core.change_config("promote", target)
            elif what == "remove_nonvoter":
                target = self.rng.choice(nonvoters)
                core.change_config("remove", target)
            else:
                target = self.rng.choice(voters)
                core.change_config("remove", target)
        except RaftError:
            return
        self.stats["conf_changes"] += 1
        self.log("conf change", what, target, "via", leader.id)
        self.process(leader)

    def ev_transfer(self) -> None:
        if self.faults:
            self.at(self.rng.randrange(2 * self.p.transfer_every), "transfer")
        leader = self.current_leader()
        if leader is None or leader.core is None:
            return
        try:
            target = leader.core.transfer_leadership(None)
        except (RaftError, ValueError):
            return
        self.stats["transfers"] += 1
        self.log("transfer", leader.id, "->", target)
        self.process(leader)

    def current_leader(self) -> SimNode | None:
        best = None
        for node in self.nodes.values():
            if (
                node.core is not None
                and node.core.is_leader
                and (
                    best is None or node.core.term > best.core.term  # type: ignore[union-attr]
                )
            ):
                best = node
        return best

    # ---------------------------------------------------------------- clients

    def encode_put(self, op: Op) -> bytes:
        return msgpack.packb([op.id, op.key, op.value])

    def ev_client_next(self, c: int) -> None:
        if not self.faults:
            return  # the workload stops when the network heals; only the final write runs
        self._op_ids += 1
        key = f"k{self.rng.randrange(self.p.keys)}"
        if self.rng.random() < 0.5:
            op = Op(self._op_ids, c, "put", key, f"v{self._op_ids}", self.now())
        else:
            op = Op(self._op_ids, c, "get", key, None, self.now())
        self.ops[op.id] = op
        self.client_busy[c] = op.id
        self.at(CLIENT_TIMEOUT, "client_timeout", c, op.id)
        self.submit(c, op)

    def submit(self, c: int, op: Op) -> None:
        nid = self.client_hint[c] or self.rng.choice(self.ids)
        self.at(1 + self.rng.randrange(self.p.max_delay), "client_request", nid, c, op.id)

    def ev_client_timeout(self, c: int, op_id: int) -> None:
        if self.client_busy.get(c) == op_id:
            self.client_busy[c] = None  # outcome unknown: ret stays +inf
            self.client_hint[c] = None
            self.at(1, "client_next", c)

    def ev_client_request(self, nid: str, c: int, op_id: int) -> None:
        if self.client_busy.get(c) != op_id:
            return
        op = self.ops[op_id]
        node = self.nodes[nid]
        if node.core is None:
            self.client_retry(c, op, None)
            return
        if self.deferred(node, "client_request", nid, c, op_id):
            return
        core = node.core
        if op.kind == "put":
            try:
                idx, term = core.propose(self.encode_put(op))
            except NotLeader as e:
                self.client_retry(c, op, e.leader_id)
                return
            node.pending_writes[idx] = (term, op.id)
        else:
            # As node.py: no lease while the ticker is late (the node's sense of time is stale).
            fresh = self.time - node.last_tick <= node.period * 3 // 2
            if self.p.lease_reads and fresh and core.has_lease() and node.applied >= core.commit:
                self.stats["lease_reads"] += 1
                self.reply(node, op.id, node.kv.get(op.key))
                return
            self._read_ctx += 1
            node.pending_reads[self._read_ctx] = op.id
            core.read_index(self._read_ctx)
        self.process(node)

    def client_retry(self, c: int, op: Op, hint: str | None) -> None:
        self.client_hint[c] = hint
        self.at(
            5 + self.rng.randrange(20),
            "client_request",
            hint or self.rng.choice(self.ids),
            c,
            op.id,
        )

    def reply(self, node: SimNode, op_id: int, value: str | None, ok: bool = True) -> None:
        self.at(1 + self.rng.randrange(self.p.max_delay), "client_reply", op_id, value, ok, node.id)

    def ev_client_reply(self, op_id: int, value: str | None, ok: bool, nid: str) -> None:
        op = self.ops[op_id]
        if op.client == -1:
            if ok and op.ret == INF:
                op.ret = self.now()
            return
        c = op.client
        if self.client_busy.get(c) != op_id or op.ret != INF:
            return
        if not ok:
            self.client_retry(c, op, None)  # reads only: no effect, safe to retry
            return
        if op.kind == "get":
            op.value = value
        op.ret = self.now()
        self.client_busy[c] = None
        self.client_hint[c] = nid
        self.at(self.rng.randrange(30), "client_next", c)

    # ---------------------------------------------------------------- driving a node

    def process(self, node: SimNode) -> None:
        core = node.core
        if core is None:
            return
        while core.has_ready():
            rd = core.ready()
            self.check_ready(node, rd)
            for m in rd.messages_now:
                self.send(m)
            if rd.snapshot is not None:
                self.stats["snapshots_installed"] += 1
                node.kv = dict(msgpack.unpackb(rd.snapshot.data))
                node.applied = rd.snapshot.meta.index
                node.last_snapshot = node.applied
            for e in rd.committed:
                self.apply(node, e)
            for ctx, index in rd.read_states:
                op_id = node.pending_reads.pop(ctx, None)
                if op_id is not None:
                    node.waiting_reads.append((index, op_id))
            for ctx in rd.read_failures:
                op_id = node.pending_reads.pop(ctx, None)
                if op_id is not None:
                    self.reply(node, op_id, None, ok=False)
            if rd.needs_persist or rd.messages_after:
                batch = PersistBatch(
                    hard_state=rd.hard_state,
                    entries=rd.entries,
                    installed=rd.snapshot.meta if rd.snapshot is not None else None,
                )
                node.jobs.append(Job(batch, rd.persist_mark, rd.messages_after, rd.snapshot))
                self.kick_persist(node)
        if node.waiting_reads:
            still = []
            for index, op_id in node.waiting_reads:
                if node.applied >= index:
                    op = self.ops[op_id]
                    self.reply(node, op_id, node.kv.get(op.key))
                else:
                    still.append((index, op_id))
            node.waiting_reads = still
        if core.role is not Role.LEADER and node.pending_writes:
            # Lost leadership: entries not yet committed have an unknown outcome (the client
            # times out); committed ones will still be applied and answered here.
            node.pending_writes = {i: v for i, v in node.pending_writes.items() if i <= core.commit}
        self.maybe_snapshot(node)

    def apply(self, node: SimNode, e: Entry) -> None:
        if e.index != node.applied + 1:
            raise InvariantViolation(f"{node.id}: applied {e.index} after {node.applied}")
        known = self.committed.get(e.index)
        if known is None:
            self.committed[e.index] = (e.term, int(e.kind), e.data)
        elif known != (e.term, int(e.kind), e.data):
            raise InvariantViolation(
                f"state machine safety: {node.id} applied a different "
                f"entry at {e.index}: {known[0]} vs {e.term}"
            )
        node.applied = e.index
        if e.kind is EntryKind.NORMAL:
            op_id, key, value = msgpack.unpackb(e.data)
            node.kv[key] = value
            pending = node.pending_writes.pop(e.index, None)
            if pending is not None and pending[0] == e.term and pending[1] == op_id:
                self.reply(node, op_id, None)
        else:
            node.pending_writes.pop(e.index, None)

    def maybe_snapshot(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if node.snapshot_pending or (
            node.applied - node.last_snapshot < self.p.snapshot_every
            and core.snapshot_wanted <= node.last_snapshot  # a follower needs released entries
        ):
            return
        if core.snapshot is not None and core.snapshot.meta.index >= node.applied:
            return
        index = node.applied
        if node.applied - node.last_snapshot < self.p.snapshot_every:
            self.stats["snapshots_wanted"] += 1
        term = core.log.term(index)
        assert term is not None
        ci, conf = core.configuration_at(index)
        snap = Snapshot(SnapshotMeta(index, term, conf, ci), msgpack.packb(node.kv))
        node.last_snapshot = index
        node.snapshot_pending = True
        batch = PersistBatch(local_snapshot=snap.meta, compact_to=max(0, index - self.p.trailing))
        node.jobs.append(Job(batch, None, [], snapshot=snap, compacted=snap))
        self.kick_persist(node)

    # ---------------------------------------------------------------- invariants

    def check_ready(self, node: SimNode, rd: Ready) -> None:
        core = node.core
        assert core is not None
        if core.role is Role.LEADER:
            holder = self.leaders.setdefault(core.term, node.id)
            if holder != node.id:
                raise InvariantViolation(
                    f"election safety: {holder} and {node.id} both lead term {core.term}"
                )
            if node.role is not Role.LEADER or node.term != core.term:
                self.check_leader_completeness(node)
        node.role, node.term = core.role, core.term
        # An upper bound of the term in which each index was committed: the lowest term of any
        # node seen knowing it committed.
        for index in range(node.seen_commit + 1, core.commit + 1):
            old = self.commit_terms.get(index)
            if old is None or core.term < old:
                self.commit_terms[index] = core.term
        node.seen_commit = max(node.seen_commit, core.commit)
        if rd.snapshot is not None:
            m = rd.snapshot.meta
            known = self.committed.get(m.index)
            if known is not None and known[0] != m.term:
                raise InvariantViolation(f"{node.id}: snapshot at {m.index} has term {m.term}")
        for e in rd.entries:
            prev = core.log.term(e.index - 1)
            key = (e.index, e.term)
            val = (int(e.kind), e.data, prev)
            old = self.seen.setdefault(key, val)
            if old != val:
                raise InvariantViolation(
                    f"log matching: two different entries at index {e.index} term {e.term}"
                )
        if core.commit > core.log.last_index:
            raise InvariantViolation(f"{node.id}: commit beyond the end of its log")

    def check_leader_completeness(self, node: SimNode) -> None:
        """Every entry committed in an earlier term is in the new leader's log."""
        core = node.core
        assert core is not None
        for index, commit_term in self.commit_terms.items():
            if index <= core.log.base_index or commit_term >= core.term:
                continue
            known = self.committed.get(index)
            if known is None:
                continue
            term = known[0]
            if core.log.term(index) != term:
                raise InvariantViolation(
                    f"leader completeness: {node.id} leads term {core.term} without committed "
                    f"entry {index} (term {term})"
                )


def run_seed(seed: int, verbose: bool = False) -> Sim:
    sim = Sim(seed, verbose=verbose)
    try:
        sim.run()
    except (InvariantViolation, AssertionError, RaftError) as exc:
        raise InvariantViolation(
            f"seed {seed} failed: {exc}\nreplay: python -m tests.raft.sim {seed} -v"
        ) from exc
    return sim


if __name__ == "__main__":
    s = run_seed(int(sys.argv[1]), verbose="-v" in sys.argv)
    print("ok", s.p, s.stats, "ops", len(s.history), "committed", len(s.committed))
