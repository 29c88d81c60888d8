"""RaftNode: the asyncio driver that ties the core to storage, transport and the application.

Ordering rules it enforces (see docs/raft.md):
- every input (tick, message, proposal) is stepped into the core on the event loop; outputs are
  collected once per loop iteration (call_soon coalescing), which batches concurrent proposals
  into one AppendEntries per follower;
- persistence jobs run in order, one save at a time; jobs queued while a save is running are
  merged into the next one (group commit). A small save on a quick disk runs on the loop once
  the round's messages are out (no thread hand-off); others on ONE storage thread;
- messages_after leave only once their job (and all before it) is durable;
- committed entries are applied on the loop, in order, exactly once per start.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from consulpy.raft import trace
from consulpy.raft.config import RaftConfig
from consulpy.raft.core import PersistentState, RaftCore, Ready, Role
from consulpy.raft.errors import (
    ConfigChangeInProgress,
    LeadershipLost,
    NotLeader,
    RaftError,
    ShutdownError,
    StorageError,
    StorageUnavailable,
)
from consulpy.raft.heap import release_free_memory
from consulpy.raft.log_stores import open_log_store
from consulpy.raft.snapshot_store import (
    FileSnapshotStore,
    MemorySnapshotStore,
    SnapshotReader,
    SnapshotStore,
    SpoolBuffer,
)
from consulpy.raft.storage import LogStore, MemoryLogStore, PersistBatch, StoredState
from consulpy.raft.transport import TcpTransport, Transport, split_address
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    Message,
    MsgType,
    Server,
    Snapshot,
    SnapshotData,
    SnapshotMeta,
    Suffrage,
)

log = logging.getLogger("consulpy.raft")

LeaderCallback = Callable[[bool, str | None, str | None], None]


class StateMachine(Protocol):
    """The application's replicated state.

    apply() sees NORMAL entries only, in log order, once per committed entry after each (re)start
    past the last snapshot. NOOP and configuration entries are not passed to apply(), but the
    applied index still advances over them.
    """

    def apply(self, index: int, data: bytes) -> Any: ...

    def snapshot(self) -> Callable[[], bytes]:
        """Called on the event loop at a consistent point; the returned callable runs in a worker
        thread and must read only a frozen copy of the state."""
        ...

    def restore(self, data: bytes) -> None: ...

    # Optional: `restore_from(src)` loads a snapshot from a file-like object (read(n)); when
    # the state machine has it, a snapshot on disk is loaded from its file, never read whole.
    # Optional: `prepare_restore(src) -> install` builds the state from such a reader in a
    # worker thread (touching nothing live) and returns a callable that swaps it in on the
    # event loop: a follower then keeps answering the leader while a large snapshot loads.


@dataclass(slots=True)
class _Job:
    batch: PersistBatch
    mark: tuple[int, int] | None = None
    after: list[Message] = field(default_factory=list)
    snapshot: Snapshot | None = None  # file to write (fsync, rename) before the batch commits
    compacted: Snapshot | None = None  # local snapshot: compact the core once durable
    done: asyncio.Future | None = None


class Recorder(Protocol):
    """Where the node reports its metrics (hashicorp/raft's names: raft.apply,
    raft.commitTime, raft.fsm.apply, raft.state.*, raft.leader.dispatchLog,
    raft.replication.appendEntries.rpc|logs and raft.replication.heartbeat per peer_id). The
    library depends on nothing: the application hands in its registry."""

    def incr(
        self, name: str, value: float = 1.0, labels: tuple[tuple[str, str], ...] = ()
    ) -> None: ...

    def sample(self, name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None: ...

    def handle(self, kind: str, name: str, labels: tuple[tuple[str, str], ...] = ()) -> Series:
        """One series (kind "counter" or "sample") bound once, for the per-entry paths."""
        ...


class Series(Protocol):
    def add(self, value: float = 1.0) -> None: ...


class _NoSeries:
    def add(self, value: float = 1.0) -> None:
        pass


class _NoMetrics:
    def incr(self, name: str, value: float = 1.0, labels: tuple[tuple[str, str], ...] = ()) -> None:
        pass

    def sample(self, name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None:
        pass

    def handle(self, kind: str, name: str, labels: tuple[tuple[str, str], ...] = ()) -> Series:
        return _NoSeries()


class RaftNode:
    def __init__(
        self,
        config: RaftConfig,
        state_machine: StateMachine,
        storage_dir: str | None,
        transport: Transport | None = None,
        *,
        rng: random.Random | None = None,
        log_store: LogStore | None = None,
        snapshot_store: SnapshotStore | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.sm = state_machine
        self.storage_dir = storage_dir
        self.transport = transport
        self._rng = rng
        self._log_store = log_store
        self._snap_store = snapshot_store
        self.core: RaftCore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-storage")
        self._tasks: list[asyncio.Task] = []
        self._jobs: list[_Job] = []
        self._in_process = False  # inside _process: it starts the write once sends are out
        self._writing = False  # a write is under way (in place or on the storage thread)
        self._retry: asyncio.TimerHandle | None = None  # a failed write waits to be retried
        self._retry_delay = 0.0
        # Seconds, moving average of recent synced saves: the store's own time, not the
        # hand-offs around it (those would keep a loaded machine on the thread for good).
        self._write_cost = 0.0
        self._notice: asyncio.TimerHandle | None = None  # a commit notice waiting to go out
        self._scheduled = False
        self._stopping = False
        self._started = False
        self._fatal: BaseException | None = None
        self._storage_error: StorageUnavailable | None = None  # set while writes fail

        self._applied = 0
        self._last_snapshot_index = 0
        self._snapshotting = False
        self._restored: Snapshot | None = None  # a user restore: already in the state machine
        # Snapshots (and the entries committed after them) waiting to be applied in order
        # while one loads in a worker thread (StateMachine.prepare_restore), and that task.
        self._apply_queue: list[tuple[Snapshot | None, list[Entry]]] = []
        self._loader: asyncio.Task | None = None
        self._loaded = asyncio.Event()
        self._pending: dict[int, tuple[int, asyncio.Future]] = {}
        self._reads: dict[int, asyncio.Future] = {}
        self._waiting_reads: list[tuple[int, asyncio.Future]] = []
        self._read_ctx = 0
        self._leader_callbacks: list[LeaderCallback] = []
        self._leader_seen: tuple[bool, str | None] = (False, None)
        self._leader_event = asyncio.Event()
        self._leader_waiters: list[asyncio.Future] = []
        self._progress_event = asyncio.Event()
        self._last_heard: dict[str, float] = {}
        # Leader lease timing: (first read sequence, loop time) marks; every sequence from a
        # mark's up to the next mark's left no earlier than its time (see has_lease).
        self._seq_marks: collections.deque[tuple[int, float]] = collections.deque()
        self._seq_seen = 0
        self._seq_term = -1
        self._clock: Callable[[], float] = time.monotonic  # the loop's clock once started
        self._addresses: dict[str, str] = {}
        self.metrics = _NoMetrics()
        # Replication timers: when the oldest unanswered AppendEntries / the last heartbeat
        # went to each peer, and each peer's label tuple (built once, not per message).
        self._append_sent: dict[str, float] = {}
        self._beat_sent: dict[str, float] = {}
        self._peer_labels: dict[str, tuple[tuple[str, str], ...]] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        if self._log_store is None:
            if self.storage_dir is None:
                self._log_store = MemoryLogStore()
            else:
                self._log_store = await self._run_io(
                    open_log_store,
                    self.storage_dir,
                    self.config.log_store,
                    self.config.wal_segment_size,
                )
        if self._snap_store is None:
            if self.storage_dir is None:
                self._snap_store = MemorySnapshotStore(self.config.snapshots_retained)
            else:
                snap_dir = os.path.join(self.storage_dir, "snapshots")
                self._snap_store = await self._run_io(
                    FileSnapshotStore, snap_dir, self.config.snapshots_retained
                )
        stored = await self._run_io(self._log_store.load)
        snapshot = None
        if stored.snapshot is not None:
            snapshot = await self._run_io(self._load_snapshot, stored)
            self._restore_sm(snapshot.data)
            self._applied = self._last_snapshot_index = snapshot.meta.index
            snapshot = self._on_disk(snapshot)
        self.core = RaftCore(
            self.config, self._rng, PersistentState(stored.hard_state, snapshot, stored.entries)
        )
        if self.storage_dir is not None:
            spool_dir = os.path.join(self.storage_dir, "snapshots")
            self.core.snapshot_buffer = lambda size: SpoolBuffer(size, spool_dir)
        if self.transport is None:
            host, port = split_address(self.config.address)
            self.transport = TcpTransport(host, port, advertise=self.config.advertise)
        await self.transport.start(self._on_message)
        # The advertised address, never the bound one: peers store and dial what we say here.
        self.config.address = self.transport.address
        self._remember_addresses()
        self._started = True
        loop = self._loop
        self._clock = loop.time
        self._tasks = [
            loop.create_task(self._tick_loop(), name=f"raft-tick-{self.config.id}"),
            loop.create_task(self._snapshot_loop(), name=f"raft-snapshot-{self.config.id}"),
        ]
        self._kick()

    def _restore_sm(self, data: bytes | SnapshotData) -> None:
        """Load a snapshot into the state machine: from a file-like reader when the data is
        a file (received into a SpoolBuffer, or read from disk) and the machine can."""
        restore_from = getattr(self.sm, "restore_from", None)
        if isinstance(data, (bytes, bytearray)):
            self.sm.restore(data)  # type: ignore[arg-type]
        elif restore_from is not None:
            restore_from(SnapshotReader(data))
        else:
            self.sm.restore(bytes(data))

    def _load_snapshot(self, stored: StoredState) -> Snapshot:
        """The recorded snapshot, or else the newest older one the log still covers."""
        assert stored.snapshot is not None and self._snap_store is not None
        want = stored.snapshot
        # From its file when the store and the state machine can (never the data whole).
        load = self._snap_store.load
        if hasattr(self.sm, "restore_from"):
            load = getattr(self._snap_store, "load_file", load)
        snap = load(want.index, want.term)
        if snap is not None:
            return snap
        terms = {e.index: e.term for e in stored.entries}
        first = stored.entries[0].index if stored.entries else want.index + 1
        for index, term in self._snap_store.available():
            if index >= want.index or first > index + 1 or terms.get(index, term) != term:
                continue  # the log no longer reaches back to it
            older = load(index, term)
            if older is not None:
                log.warning(
                    "raft %s: snapshot %d is unreadable; starting from snapshot %d and "
                    "replaying the log from %d",
                    self.id,
                    want.index,
                    index,
                    index + 1,
                )
                return older
        raise StorageError(
            f"raft: snapshot {want.index} is recorded but unreadable, and no older snapshot is "
            f"covered by the log (it starts at {first}); restore this server from a snapshot "
            f"(`consulpy snapshot restore`) or remove its data dir so it catches up from the leader"
        )

    async def bootstrap(self, servers: list[Server]) -> bool:
        """Write the initial configuration; False (and nothing done) if this node has state."""
        core = self._require()
        if not core.is_empty():
            return False
        core.bootstrap(Configuration(tuple(servers)))
        self._remember_addresses()
        self._process()
        await self._barrier()
        return True

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        # Let queued persistence finish: nothing acknowledged may be lost on a clean stop.
        with contextlib.suppress(Exception):
            if self._started and self._fatal is None:
                await asyncio.wait_for(self._barrier(), 10)
        if self._retry is not None:
            self._retry.cancel()
        if self._notice is not None:
            self._notice.cancel()
        tasks = [*self._tasks, *([self._loader] if self._loader is not None else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        if self.transport is not None:
            await self.transport.close()
        self._fail_all(ShutdownError("raft node shut down"))
        if self._log_store is not None:
            with contextlib.suppress(Exception):
                await self._run_io(self._log_store.close)
        self._io.shutdown(wait=True)
        if trace.ENABLED:
            trace.flush()

    # ------------------------------------------------------------------ public API

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def metrics(self) -> Recorder:
        return self._metrics

    @metrics.setter
    def metrics(self, recorder: Recorder) -> None:
        """Hand in the application's registry; the per-entry series are bound here once."""
        self._metrics = recorder
        self._m_apply = recorder.handle("counter", "raft.apply")
        self._m_commit_time = recorder.handle("sample", "raft.commitTime")
        self._m_fsm_apply = recorder.handle("sample", "raft.fsm.apply")
        self._m_dispatch_log = recorder.handle("sample", "raft.leader.dispatchLog")

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.is_leader and not self._stopping

    def leader(self) -> tuple[str | None, str | None]:
        if self.core is None:
            return None, None
        lid, addr = self.core.leader_hint()
        if lid is not None and addr is None:
            addr = self._addresses.get(lid)
        return lid, addr

    def configuration(self) -> list[dict[str, str]]:
        return self._require().configuration.to_list()

    def on_leader_change(self, callback: LeaderCallback) -> None:
        self._leader_callbacks.append(callback)

    async def wait_leader_change(
        self, timeout: float | None = None
    ) -> tuple[bool, str | None, str | None]:
        """Wait for the next leadership change seen by this node: (is_leader, id, address)."""
        assert self._loop is not None
        fut: asyncio.Future = self._loop.create_future()
        self._leader_waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            if fut in self._leader_waiters:
                self._leader_waiters.remove(fut)

    async def wait_for_leader(self, timeout: float | None = None) -> tuple[str, str | None]:
        """Wait until some leader is known to this node."""

        async def wait() -> tuple[str, str | None]:
            while True:
                lid, addr = self.leader()
                if lid is not None:
                    return lid, addr
                self._leader_event.clear()
                await self._leader_event.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def propose(self, data: bytes, timeout: float | None = None) -> tuple[int, Any]:
        """Replicate `data`; returns (index, apply() result) once committed and applied here."""
        core = self._require()
        if self._storage_error is not None:  # nothing new while the disk refuses writes
            raise StorageUnavailable(str(self._storage_error))
        index, term = core.propose(data)  # raises NotLeader / TransferInProgress
        if trace.ENABLED:
            trace.proposed(index)
        self._m_apply.add()
        start = time.perf_counter()
        result = await self._await_entry(index, term, timeout)
        self._m_commit_time.add((time.perf_counter() - start) * 1000.0)
        if trace.ENABLED:
            trace.mark("resumed", index)
        return result

    async def _await_entry(self, index: int, term: int, timeout: float | None) -> tuple[int, Any]:
        assert self._loop is not None
        fut: asyncio.Future = self._loop.create_future()
        self._pending[index] = (term, fut)
        self._kick()
        # A timer instead of wait_for(shield(...)): the apply wakes this task directly rather
        # than through two more futures (each one more pass of the loop).
        expire = self._loop.call_later(
            timeout if timeout is not None else self.config.default_timeout, _expire, fut
        )
        try:
            return await fut
        finally:
            expire.cancel()
            if self._pending.get(index, (0, None))[1] is fut:
                del self._pending[index]

    async def read_index(self, timeout: float | None = None) -> int:
        """Linearizable read barrier: returns an index I such that this node has applied I and
        every write acknowledged before the call is <= I.

        On the leader it confirms leadership with a heartbeat round; on a follower the request is
        forwarded to the leader (raises NotLeader when no leader is known, or the leader refused).
        """
        core = self._require()
        assert self._loop is not None
        self._read_ctx += 1
        ctx = self._read_ctx
        fut: asyncio.Future = self._loop.create_future()
        self._reads[ctx] = fut
        core.read_index(ctx)
        self._kick()
        try:
            return await asyncio.wait_for(
                fut, timeout if timeout is not None else self.config.default_timeout
            )
        finally:
            self._reads.pop(ctx, None)

    def has_lease(self) -> bool:
        """Leader, a quorum echoed a read sequence that first left less than the lease ago
        (by the clock, so a busy loop whose ticker runs late keeps its lease as long as the
        quorum answers), and the term's first entry applied here.

        Safe because a follower that echoed it received it after that moment, and refuses
        votes until election_ticks of its own ticks pass; lease_ticks <= election_ticks - 2
        leaves a tick of quantisation and the rest as the clock-drift margin."""
        core = self.core
        if core is None or self._stopping:
            return False
        q = core.lease_seq()  # also the tick count's verdict (ticks never run ahead of time)
        if q is None:
            return False
        marks = self._seq_marks
        while len(marks) > 1 and marks[1][0] <= q:
            marks.popleft()  # the quorum's echo only grows: older marks are done with
        if (
            not marks
            or marks[0][0] > q
            or self._clock() - marks[0][1] >= self.config.lease_ticks * self.config.tick_interval
        ) and len(core.configuration.voters()) > 1:  # a sole voter's lease needs nobody
            return False
        return self._applied >= core.term_start_index

    def _note_seqs(self, core: RaftCore) -> None:
        """Before a Ready's messages leave: the read sequences not seen yet leave no earlier
        than now (has_lease times the lease from here)."""
        seq = core.read_seq
        if core.term != self._seq_term or seq < self._seq_seen:  # a new term: seqs restart
            self._seq_marks.clear()
            self._seq_seen = 0
            self._seq_term = core.term
        if seq > self._seq_seen:
            self._seq_marks.append((self._seq_seen + 1, self._clock()))
            self._seq_seen = seq
            if len(self._seq_marks) > 256:  # no reads ask: keep what a lease could still use
                self._seq_marks.popleft()

    async def add_voter(self, server_id: str, address: str, timeout: float | None = None) -> int:
        return await self._change("add_voter", server_id, address, timeout)

    async def add_nonvoter(self, server_id: str, address: str, timeout: float | None = None) -> int:
        return await self._change("add_nonvoter", server_id, address, timeout)

    async def promote(self, server_id: str, timeout: float | None = None) -> int:
        return await self._change("promote", server_id, None, timeout)

    async def demote(self, server_id: str, timeout: float | None = None) -> int:
        return await self._change("demote", server_id, None, timeout)

    async def remove_server(self, server_id: str, timeout: float | None = None) -> int:
        return await self._change("remove", server_id, None, timeout)

    async def _change(
        self, op: str, server_id: str, address: str | None, timeout: float | None
    ) -> int:
        """Apply one membership change; waits for an earlier change to commit first."""
        core = self._require()
        assert self._loop is not None
        budget = timeout if timeout is not None else self.config.default_timeout
        deadline = self._loop.time() + budget
        while True:
            try:
                index, term = core.change_config(op, server_id, address)
                break
            except ConfigChangeInProgress:
                left = deadline - self._loop.time()
                if left <= 0:
                    raise
                self._progress_event.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._progress_event.wait()
        self._remember_addresses()
        await self._await_entry(index, term, max(0.0, deadline - self._loop.time()))
        return index

    async def transfer_leadership(
        self, target_id: str | None = None, timeout: float | None = None
    ) -> str:
        """Hand leadership to target_id (or the most up-to-date voter); returns once this node is
        no longer leader. Raises RaftError if the target did not take over in time."""
        core = self._require()
        target = core.transfer_leadership(target_id)
        if target == self.id:
            return target
        self._kick()
        budget = (
            timeout
            if timeout is not None
            else self.config.election_ticks * 2 * (self.config.tick_interval)
        )
        try:
            async with asyncio.timeout(budget):
                while core.is_leader:
                    self._leader_event.clear()
                    await self._leader_event.wait()
        except TimeoutError:
            raise RaftError(f"leadership transfer to {target} timed out") from None
        return target

    async def restore(
        self, data: bytes | SnapshotData, install: Callable[[], None], timeout: float | None = None
    ) -> int:
        """Leader only: replace the whole replicated state with `data` (the state machine's
        snapshot format), hashicorp/raft's Restore. `install` must put that state into the
        state machine (it runs on the event loop right after the log is replaced, so the
        caller can build the new state beforehand, off the loop, and swap it in here); it must
        not fail: the log is already replaced, so a failure stops the node.

        The data becomes a Raft snapshot at a new index: written to the snapshot store (a
        file, fsynced) and sent to followers by chunked InstallSnapshot, never as a log entry.
        `data` may be a file read on demand (a `SnapshotFile`): the snapshot store copies it in
        chunks, so the state is never in memory here.
        Returns the index once a quorum holds it (a NOOP after it committed) and this server's
        durable commit index covers it: until then a restart loads the snapshot as not known
        committed (RaftCore._load), so an acknowledged restore is one that reloads as
        committed. Raises NotLeader,
        ConfigChangeInProgress or StorageUnavailable before anything changed; LeadershipLost or
        TimeoutError after, when the outcome is unknown (as for any write)."""
        self._require()
        while self._apply_queue and self._loader is not None:
            self._loaded.clear()  # a snapshot still loading would land after the restore
            await self._loaded.wait()
        core = self._require()
        if self._storage_error is not None:
            raise StorageUnavailable(str(self._storage_error))
        snap, index, term = core.restore(data)
        try:
            install()
        except Exception as exc:  # the log is replaced already: this node cannot go on
            self._die(exc)
            raise
        self._restored = snap
        self._applied = self._last_snapshot_index = snap.meta.index
        for pending in [i for i in self._pending if i < snap.meta.index]:
            _, fut = self._pending.pop(pending)
            if not fut.done():  # discarded with the log: the restore replaced what it wrote
                fut.set_exception(LeadershipLost(f"entry {pending} superseded by a restore"))
        log.info(
            "raft %s: restored a snapshot at index %d (%d bytes)", self.id, index - 1, len(data)
        )
        await self._await_entry(index, term, timeout)
        await self._barrier()  # the hard state holding the commit past the NOOP is durable
        return snap.meta.index

    async def snapshot(self) -> int:
        """Take a snapshot now (normally automatic); returns its index."""
        self._require()
        return await self._take_snapshot()

    def stats(self) -> dict[str, Any]:
        core = self._require()
        lid, addr = self.leader()
        role = core.role
        state = "candidate" if role in (Role.CANDIDATE, Role.PRE_CANDIDATE) else role.value
        return {
            "id": self.id,
            "address": self.config.address,
            "state": state,
            "term": core.term,
            "leader_id": lid,
            "leader_address": addr,
            "commit_index": core.commit,
            "applied_index": self._applied,
            "last_log_index": core.log.last_index,
            "last_log_term": core.log.last_term,
            "last_contact": self._last_contact(),
            "configuration": core.configuration.to_list(),
            "configuration_index": core.configuration_index,
            "last_snapshot_index": core.snapshot.meta.index if core.snapshot else 0,
            "num_peers": max(
                0, len(core.configuration.ids()) - (1 if core.configuration.get(self.id) else 0)
            ),
        }

    def peer_stats(self) -> dict[str, dict[str, Any]]:
        """Leader only: per follower, its match index and seconds since it last answered."""
        core = self._require()
        assert self._loop is not None
        now = self._loop.time()
        out: dict[str, dict[str, Any]] = {}
        for pid, pr in core.progress.items():
            heard = self._last_heard.get(pid)
            out[pid] = {
                "match_index": pr.match,
                "next_index": pr.next,
                "state": pr.state.value,
                "last_contact": None if heard is None else now - heard,
            }
        return out

    def _last_contact(self) -> float | None:
        core = self.core
        assert core is not None and self._loop is not None
        if core.is_leader:
            return 0.0
        if core.lead is None or core.lead not in self._last_heard:
            return None
        return self._loop.time() - self._last_heard[core.lead]

    # ------------------------------------------------------------------ internals

    def _require(self) -> RaftCore:
        if self._fatal is not None:
            raise ShutdownError(f"raft node stopped after an error: {self._fatal}")
        if self.core is None or not self._started or self._stopping:
            raise ShutdownError("raft node is not running")
        return self.core

    async def _run_io(self, fn: Callable, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, fn, *args)

    def _remember_addresses(self) -> None:
        if self.core is None:
            return
        for s in self.core.configuration.servers:
            self._addresses[s.id] = s.address
        if self.core.snapshot is not None:
            for s in self.core.snapshot.meta.configuration.servers:
                self._addresses.setdefault(s.id, s.address)

    def _on_message(self, m: Message, src_address: str | None = None) -> None:
        if self._stopping or self.core is None or self._fatal is not None:
            return
        assert self._loop is not None
        self._last_heard[m.src] = self._loop.time()
        if trace.ENABLED:
            if m.type is MsgType.APPEND and m.entries:
                trace.mark("f_recv", m.entries[-1].index)
            elif m.type is MsgType.APPEND_RESP and not m.reject:
                trace.mark("ack_recv", m.index)
        if m.type is MsgType.APPEND_RESP:
            sent = self._append_sent.pop(m.src, None)
            if sent is not None:
                self.metrics.sample(
                    "raft.replication.appendEntries.rpc",
                    (time.perf_counter() - sent) * 1000.0,
                    self._labels_for(m.src),
                )
        elif m.type is MsgType.HEARTBEAT_RESP:
            sent = self._beat_sent.pop(m.src, None)
            if sent is not None and not m.reject:
                self.metrics.sample(
                    "raft.replication.heartbeat",
                    (time.perf_counter() - sent) * 1000.0,
                    self._labels_for(m.src),
                )
        if src_address and (
            m.src not in self._addresses or self.core.configuration.get(m.src) is None
        ):
            self._addresses[m.src] = src_address  # configuration addresses take precedence
        try:
            self.core.step(m)
        except RaftError as exc:
            self._die(exc)
            return
        self._kick()

    def _kick(self) -> None:
        if not self._scheduled and self._loop is not None and not self._stopping:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _die(self, exc: BaseException) -> None:
        log.error("raft %s: fatal error, stopping: %r", self.id, exc)
        self._fatal = exc
        self._fail_all(ShutdownError(f"raft node failed: {exc}"))
        if self._loop is not None:
            self._loop.create_task(self.shutdown())

    def _send(self, messages: list[Message]) -> None:
        if self.transport is None:
            return
        for m in messages:
            addr = self._addresses.get(m.dst)
            if addr is not None:
                if m.type is MsgType.APPEND and not m.notice:  # a notice is not answered
                    self._count_append(m)
                elif m.type is MsgType.HEARTBEAT:
                    self._beat_sent[m.dst] = time.perf_counter()
                self.transport.send(addr, m)

    def _count_append(self, m: Message) -> None:
        """hashicorp/raft's replication metrics: entries sent per peer, and (on the answer)
        the round trip of the oldest AppendEntries still unanswered."""
        if m.dst not in self._append_sent:
            self._append_sent[m.dst] = time.perf_counter()
        if m.entries:
            labels = self._labels_for(m.dst)
            self.metrics.incr("raft.replication.appendEntries.logs", float(len(m.entries)), labels)

    def _labels_for(self, peer: str) -> tuple[tuple[str, str], ...]:
        labels = self._peer_labels.get(peer)
        if labels is None:
            labels = self._peer_labels[peer] = (("peer_id", peer),)
        return labels

    def _process(self) -> None:
        """Step the core's output: send, apply, and persist. Messages go out before a write
        starts (a leader's AppendEntries overlap its own fsync); a write done in place may
        release more output (acknowledgements, commits), so the round repeats until quiet."""
        self._scheduled = False
        core = self.core
        if core is None or self._fatal is not None:
            return
        self._in_process = True
        try:
            while True:
                while core.has_ready():
                    self._handle_ready(core, core.ready())
                if not self._jobs or self._writing or self._retry is not None:
                    break  # what was queued leaves at the end of this loop pass
                self._flush_sends()  # before the write: replication overlaps it
                if not self._start_write():
                    break
        except RaftError as exc:
            self._die(exc)
            return
        finally:
            self._in_process = False
        if core.commit_notice_pending and self._notice is None and self._loop is not None:
            self._notice = self._loop.call_later(
                self.config.commit_notice_delay, self._notify_commit
            )
        self._check_leadership(core)

    def _notify_commit(self) -> None:
        self._notice = None
        if self.core is not None and not self._stopping:
            self.core.notify_commit()
            self._process()

    def _flush_sends(self) -> None:
        flush = getattr(self.transport, "flush", None)
        if flush is not None:
            flush()

    def _handle_ready(self, core: RaftCore, rd: Ready) -> None:
        if core.read_seq != self._seq_seen or core.term != self._seq_term:
            self._note_seqs(core)
        if self._apply_queue or self._loads_in_worker(rd.snapshot):
            # Applied in order once the snapshot ahead has loaded; sending and persisting
            # go on meanwhile (a follower acknowledges a snapshot once it is durable).
            self._send(rd.messages_now)
            self._apply_queue.append((rd.snapshot, rd.committed))
            if self._loader is None and self._loop is not None:
                self._loader = self._loop.create_task(self._load_and_apply())
        else:
            self._apply(rd.snapshot, rd.committed)
            # After the applies: their proposers are woken before these messages leave (a
            # commit notice is not urgent), unless a write starts this round (see _process).
            self._send(rd.messages_now)
        for ctx, index in rd.read_states:
            fut = self._reads.pop(ctx, None)
            if fut is not None and not fut.done():
                self._waiting_reads.append((index, fut))
        for ctx in rd.read_failures:
            fut = self._reads.pop(ctx, None)
            if fut is not None and not fut.done():
                fut.set_exception(NotLeader(*self.leader()))
        self._release_reads()
        if rd.needs_persist or rd.messages_after:
            batch = PersistBatch(
                hard_state=rd.hard_state,
                entries=rd.entries,
                installed=rd.snapshot.meta if rd.snapshot is not None else None,
            )
            self._enqueue(_Job(batch, rd.persist_mark, rd.messages_after, rd.snapshot))
        if (
            (
                self._applied - self._last_snapshot_index >= self.config.snapshot_threshold
                or core.snapshot_wanted > self._last_snapshot_index  # for a lagging follower
            )
            and not self._snapshotting
            and not self._apply_queue
            and self._loop is not None
        ):
            self._loop.create_task(self._take_snapshot())

    def _loads_in_worker(self, snap: Snapshot | None) -> bool:
        return (
            snap is not None and snap is not self._restored and hasattr(self.sm, "prepare_restore")
        )

    async def _load_and_apply(self) -> None:
        """Apply the queued snapshots and entries in order, each snapshot built in a worker
        thread and swapped in on the loop."""
        assert self._loop is not None
        try:
            while self._apply_queue:
                snap, committed = self._apply_queue[0]
                install = None
                if snap is not None and self._loads_in_worker(snap):
                    prepare = self.sm.prepare_restore  # type: ignore[attr-defined]
                    install = await self._loop.run_in_executor(
                        None, prepare, SnapshotReader(snap.data)
                    )
                self._apply(snap, committed, install)
                self._apply_queue.pop(0)
                self._release_reads()
        except Exception as exc:  # the snapshot is not a state this machine can load
            self._die(exc)
        finally:
            self._loader = None
            self._loaded.set()

    def _apply(
        self,
        snap: Snapshot | None,
        committed: list[Entry],
        install: Callable[[], None] | None = None,
    ) -> None:
        """Put a snapshot (`install` swaps in one built beforehand) and then committed
        entries into the state machine, resolving their proposers."""
        if snap is not None:
            if install is not None:
                install()
            elif snap is not self._restored:  # a user restore is in the machine already
                self._restore_sm(snap.data)
            self._restored = None
            self._applied = self._last_snapshot_index = snap.meta.index
            self._remember_addresses()
            for index in [i for i in self._pending if i <= self._applied]:
                _, fut = self._pending.pop(index)
                if not fut.done():  # folded into a snapshot from a newer leader: unknown
                    fut.set_exception(LeadershipLost(f"entry {index} superseded by a snapshot"))
        for e in committed:
            result: Any = None
            error: BaseException | None = None
            if e.kind is EntryKind.NORMAL:
                if trace.ENABLED:
                    trace.mark("apply", e.index)
                start = time.perf_counter()
                try:
                    result = self.sm.apply(e.index, e.data)
                except Exception as exc:  # the application's error goes back to its proposer
                    error = exc
                self._m_fsm_apply.add((time.perf_counter() - start) * 1000.0)
                if trace.ENABLED:
                    trace.mark("applied", e.index)
            elif e.kind is EntryKind.CONFIG:
                self._remember_addresses()
            self._applied = e.index
            pending = self._pending.pop(e.index, None)
            if pending is not None and not pending[1].done():
                term, fut = pending
                if term != e.term:
                    fut.set_exception(LeadershipLost(f"entry {e.index} was overwritten"))
                elif error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result((e.index, result))
        if committed or snap is not None:
            self._progress_event.set()

    def _release_reads(self) -> None:
        """Answer the reads whose index is applied now."""
        if self._waiting_reads:
            still = []
            for index, fut in self._waiting_reads:
                if fut.done():
                    continue
                if self._applied >= index:
                    fut.set_result(index)
                else:
                    still.append((index, fut))
            self._waiting_reads = still

    def _check_leadership(self, core: RaftCore) -> None:
        now = (core.is_leader, core.lead)
        if now == self._leader_seen:
            return
        was_leader = self._leader_seen[0]
        self._leader_seen = now
        self._leader_event.set()
        if was_leader and not core.is_leader:
            for index, (_, fut) in list(self._pending.items()):
                if index > core.commit and not fut.done():
                    fut.set_exception(LeadershipLost("leadership lost before commit"))
                    del self._pending[index]
        lid, addr = self.leader()
        if core.is_leader:
            self.metrics.incr("raft.state.leader")
        elif core.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self.metrics.incr("raft.state.candidate")
        else:
            self.metrics.incr("raft.state.follower")
        log.info("raft %s: leader is now %s (term %d)", self.id, lid, core.term)
        waiters, self._leader_waiters = self._leader_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result((core.is_leader, lid, addr))
        for cb in list(self._leader_callbacks):
            try:
                cb(core.is_leader, lid, addr)
            except Exception:
                log.exception("raft %s: leader-change callback failed", self.id)

    def _enqueue(self, job: _Job) -> None:
        self._jobs.append(job)
        if not self._in_process and self._start_write():
            self._kick()  # written in place: the core may have output now

    async def _barrier(self) -> None:
        """Wait until everything queued for persistence so far is durable."""
        assert self._loop is not None
        fut: asyncio.Future = self._loop.create_future()
        self._enqueue(_Job(PersistBatch(), done=fut))
        await fut

    def _start_write(self) -> bool:
        """Hand every queued job to storage as one write, unless one is under way or waiting
        to be retried (jobs queued meanwhile are merged into the next: group commit). Returns
        True when they were written in place, on the loop: the core may have output then."""
        if self._writing or not self._jobs or self._retry is not None or self._fatal is not None:
            return False
        jobs, self._jobs = self._jobs, []
        self._writing = True
        start = time.perf_counter()
        if trace.ENABLED:
            _trace_jobs("wal_submit", jobs)
        if self._in_place(jobs):
            try:
                cost = self._write_jobs(jobs)
            except Exception as exc:
                self._written(jobs, start, exc)
            else:
                self._written(jobs, start, None, cost)
            return True
        loop = self._loop
        assert loop is not None

        def back(f: concurrent.futures.Future) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._written_in_thread, jobs, start, f)

        self._io.submit(self._write_jobs, jobs).add_done_callback(back)
        return False

    def _in_place(self, jobs: list[_Job]) -> bool:
        """Write on the loop itself when that is cheaper than handing over to the storage
        thread and back (two thread wake-ups, each a trip through the scheduler on a busy
        machine): a few entries or none (a lone writer, a commit index or a vote: the loop
        has nothing else to do meanwhile) on a disk whose recent synced writes were quick.
        Larger batches mean concurrent writers, whose requests the loop serves while the
        thread waits for the disk; a slow disk (a network volume) always goes to the thread,
        so the loop is never held up for long. So do a leader's entries when its followers
        alone make a quorum: the loop must read their acknowledgements during its fsync."""
        count = 0
        for j in jobs:
            b = j.batch
            if j.snapshot is not None or b.installed or b.local_snapshot or b.compact_to:
                return False
            count += len(b.entries)
        if count and self._quorum_without_me():
            return False
        return count <= _IN_PLACE_ENTRIES and self._write_cost <= self.config.inline_write_max

    def _quorum_without_me(self) -> bool:
        """A leader whose followers alone make a quorum (3 voters or more) does not wait for
        its own write: written on the loop, its fsync would hold up their acknowledgements
        (read only once it returns), which is the commit path."""
        core = self.core
        if core is None or not core.is_leader:
            return False
        voters = core.configuration.voters()
        return len(voters) - 1 >= len(voters) // 2 + 1

    def _written_in_thread(
        self, jobs: list[_Job], start: float, f: concurrent.futures.Future
    ) -> None:
        if f.cancelled():
            self._written(jobs, start, ShutdownError("storage thread stopped"))
        else:
            exc = f.exception()
            self._written(jobs, start, exc, None if exc is not None else f.result())
        self._process()

    def _written(
        self,
        jobs: list[_Job],
        start: float,
        exc: BaseException | None,
        cost: float | None = None,
    ) -> None:
        """On the loop: a write finished (exc None) or failed; release what waited on it."""
        self._writing = False
        if exc is not None:
            self._write_failed(jobs, exc)
            return
        took = time.perf_counter() - start
        if cost is not None:
            self._write_cost += (cost - self._write_cost) * 0.25
        core = self.core
        assert core is not None
        if core.is_leader:
            self._m_dispatch_log.add(took * 1000.0)
        if self._storage_error is not None:
            log.warning("raft %s: the log is writable again", self.id)
            self._storage_error = None
            self._retry_delay = 0.0
        if trace.ENABLED:
            _trace_jobs("wal_seen", jobs)
        after = False
        for j in jobs:
            if j.after:
                self._send(j.after)
                after = True
            if j.mark is not None:
                core.on_persisted(*j.mark)
            if j.snapshot is not None and core.snapshot is j.snapshot:
                core.snapshot = self._on_disk(j.snapshot)  # an installed one, now saved
            if j.compacted is not None:
                core.compact(self._on_disk(j.compacted), self.config.trailing_logs)
                self._last_snapshot_index = max(self._last_snapshot_index, j.compacted.meta.index)
            if j.done is not None and not j.done.done():
                j.done.set_result(None)
        if after:
            self._flush_sends()  # acknowledgements and votes: at once

    def _write_failed(self, jobs: list[_Job], exc: BaseException) -> None:
        if not isinstance(exc, StorageUnavailable):
            self._die(exc)
            for j in jobs:
                if j.done is not None and not j.done.done():
                    j.done.set_exception(ShutdownError(f"storage failed: {exc}"))
            return
        # Disk full or an I/O error: nothing of these jobs is durable, so nothing they
        # acknowledge goes out. Retry them, in order, until the disk takes them.
        if self._storage_error is None:
            log.error(
                "raft %s: cannot persist the log, writes are refused until this clears: %s",
                self.id,
                exc,
            )
            self._step_down_for_storage()
        self._storage_error = exc
        self._jobs[:0] = jobs
        self._retry_delay = min(1.0, max(0.05, self._retry_delay * 2))
        assert self._loop is not None
        self._retry = self._loop.call_later(self._retry_delay, self._retry_write)

    def _retry_write(self) -> None:
        self._retry = None
        self._process()

    def _on_disk(self, snap: Snapshot) -> Snapshot:
        """The same snapshot with its data read from the saved file when needed, so the copy
        the core keeps for lagging followers does not hold the whole state in memory again."""
        opener = getattr(self._snap_store, "open_data", None)  # a caller's own store may lack it
        if opener is None:
            return snap
        # bytes, or a file that is not the store's (a restore's spooled state): the saved
        # file takes over, so the other can be deleted
        data = opener(snap.meta.index, snap.meta.term)
        return snap if data is None else Snapshot(snap.meta, data)

    def _step_down_for_storage(self) -> None:
        """A leader that cannot write its log hands leadership to a voter that can, so the
        cluster keeps taking writes (with no other voter it just refuses them)."""
        core = self.core
        if core is None or not core.is_leader:
            return
        try:
            target = core.transfer_leadership(None)
        except (RaftError, ValueError):
            return
        log.warning("raft %s: handing leadership to %s: its log cannot be written", self.id, target)
        self._kick()

    def _write_jobs(self, jobs: list[_Job]) -> float | None:
        """Write the jobs (in place or on the storage thread); returns how long the store's
        save took when it was a synced one (it carried entries, see WALLogStore.save)."""
        assert self._log_store is not None and self._snap_store is not None
        for j in jobs:
            if j.snapshot is not None:
                try:
                    self._snap_store.save(j.snapshot)
                except OSError as exc:
                    raise StorageUnavailable(f"snapshot write failed: {exc}") from exc
        batches = [j.batch for j in jobs if not _empty_batch(j.batch)]
        if batches:
            if trace.ENABLED:
                _trace_jobs("wal_start", jobs)
            began = time.perf_counter()
            self._log_store.save(batches)
            cost = time.perf_counter() - began
            if trace.ENABLED:
                _trace_jobs("wal_done", jobs)
            if any(b.entries for b in batches):
                return cost
        return None

    async def _tick_loop(self) -> None:
        assert self._loop is not None
        loop = self._loop
        interval = self.config.tick_interval
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = loop.time()
            core = self.core
            assert core is not None
            n = 0
            # Catch up after a stall so leases and timeouts track real time, within reason.
            while next_at <= now and n < 2 * self.config.election_ticks:
                core.tick()
                n += 1
                next_at += interval
            if next_at <= now:
                next_at = now + interval
            self._kick()

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_interval)
            if self._applied - self._last_snapshot_index >= self.config.snapshot_threshold:
                with contextlib.suppress(RaftError):
                    await self._take_snapshot()

    async def _take_snapshot(self) -> int:
        core = self.core
        assert core is not None and self._loop is not None
        if self._snapshotting or self._apply_queue:  # (a snapshot is loading: not applied yet)
            return self._last_snapshot_index
        self._snapshotting = True
        try:
            index = self._applied
            if index <= self._last_snapshot_index or index == 0:
                return self._last_snapshot_index
            term = core.log.term(index)
            if term is None:
                return self._last_snapshot_index
            conf_index, conf = core.configuration_at(index)
            writer = self.sm.snapshot()
            data = await self._loop.run_in_executor(None, writer)
            del writer  # the frozen copy of the state: free before the trim below
            if self._last_snapshot_index >= index:
                return self._last_snapshot_index  # a snapshot installed (or restored) meanwhile
            snap = Snapshot(SnapshotMeta(index, term, conf, conf_index), data)
            fut: asyncio.Future = self._loop.create_future()
            # Keep the log back to the previous snapshot too: if this new one is damaged on
            # disk, start-up falls back to the previous one and replays from there.
            keep_from = min(index - self.config.trailing_logs, self._last_snapshot_index)
            batch = PersistBatch(local_snapshot=snap.meta, compact_to=max(0, keep_from))
            self._enqueue(_Job(batch, snapshot=snap, compacted=snap, done=fut))
            await fut
            log.info("raft %s: snapshot at index %d (%d bytes)", self.id, index, len(data))
            # The snapshot's buffers and the compacted entries are free now: give their pages
            # back (they sit between long-lived state rows, so the heap would stay at its peak).
            del data, snap, batch
            await self._run_io(release_free_memory)
            return index
        finally:
            self._snapshotting = False

    def _fail_all(self, exc: BaseException) -> None:
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
        for fut in self._reads.values():
            if not fut.done():
                fut.set_exception(exc)
        self._reads.clear()
        for _, fut in self._waiting_reads:
            if not fut.done():
                fut.set_exception(exc)
        self._waiting_reads.clear()


_IN_PLACE_ENTRIES = 8


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def _trace_jobs(stage: str, jobs: list[_Job]) -> None:
    for j in jobs:
        if j.batch.entries:
            trace.mark(stage, j.batch.entries[-1].index)


def _empty_batch(b: PersistBatch) -> bool:
    return (
        b.hard_state is None
        and not b.entries
        and b.installed is None
        and b.local_snapshot is None
        and not b.compact_to
    )


__all__ = ["RaftNode", "Server", "StateMachine", "Suffrage"]
