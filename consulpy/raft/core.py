"""RaftCore: the deterministic, sans-I/O Raft state machine.

Inputs are method calls: tick(), step(message), propose(data), change_config(...),
read_index(ctx), transfer_leadership(target), on_persisted(index, term), compact(snapshot).
Outputs accumulate until ready() hands them out as one Ready batch:

- ``hard_state`` / ``entries`` / ``snapshot``: to persist, in that order, in one transaction;
- ``messages_now``: leader traffic that may leave at once (a leader may write its log in parallel
  with its followers, as the Raft dissertation (10.2.1) allows: it only counts itself toward a
  commit quorum after on_persisted);
- ``messages_after``: everything else (votes, acknowledgements); they may leave only after this
  Ready's persistence AND every earlier Ready's persistence completed;
- ``committed``: entries to apply, in order, after restoring ``snapshot`` if there is one:
  durable here on a follower; on a leader, committed (durable on a quorum, which may not yet
  include the leader itself);
- ``read_states`` / ``read_failures``: outcomes of read_index() requests.

No clocks, sockets or threads; randomness comes from the injected RNG. That is what lets the
simulation in tests/raft replay any interleaving from a seed.
"""

from __future__ import annotations

import enum
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consulpy.raft.config import RaftConfig
from consulpy.raft.errors import (
    ConfigChangeInProgress,
    NotLeader,
    RaftError,
    StorageError,
    TransferInProgress,
)
from consulpy.raft.log import RaftLog
from consulpy.raft.progress import Progress, ProgressState
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    Server,
    Snapshot,
    SnapshotBuffer,
    SnapshotData,
    SnapshotMeta,
    Suffrage,
)


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class SafetyViolation(RaftError):
    """An invariant of the protocol broke (e.g. a committed entry would be overwritten)."""


@dataclass(slots=True)
class PersistentState:
    """What a node finds in its stores at start."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class Ready:
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages_now: list[Message] = field(default_factory=list)
    messages_after: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    read_states: list[tuple[int, int]] = field(default_factory=list)
    read_failures: list[int] = field(default_factory=list)

    @property
    def needs_persist(self) -> bool:
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None

    @property
    def persist_mark(self) -> tuple[int, int] | None:
        """(index, term) to report to on_persisted() once this Ready is durable."""
        if self.entries:
            return self.entries[-1].index, self.entries[-1].term
        if self.snapshot is not None:
            return self.snapshot.meta.index, self.snapshot.meta.term
        return None

    @property
    def empty(self) -> bool:
        return not (
            self.needs_persist
            or self.messages_now
            or self.messages_after
            or self.committed
            or self.read_states
            or self.read_failures
        )


_RESPONSES = (MsgType.APPEND_RESP, MsgType.HEARTBEAT_RESP, MsgType.SNAPSHOT_RESP)


class RaftCore:
    def __init__(
        self,
        config: RaftConfig,
        rng: random.Random | None = None,
        state: PersistentState | None = None,
    ) -> None:
        config.validate()
        self.id = config.id
        self.cfg = config
        self.rng = rng if rng is not None else random.Random()
        state = state if state is not None else PersistentState()

        self.term = state.hard_state.term
        self.vote = state.hard_state.vote
        self.lead: str | None = None
        self.role = Role.FOLLOWER

        self.log = RaftLog()
        self.snapshot: Snapshot | None = None  # latest snapshot: sent to followers that lag
        # Leader: a follower needs entries released from memory and no snapshot covers them;
        # the driver takes a snapshot at its applied index (>= this) and the follower gets it.
        self.snapshot_wanted = 0
        # (index, configuration) of every configuration in the log, oldest first; the first one
        # may come from the snapshot.
        self._conf_history: list[tuple[int, Configuration]] = []
        self.commit = 0
        self._load(state)

        self._ticks = 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        # Ticks since this node last heard from a leader (or booted). While below election_ticks
        # it ignores vote requests: that is what makes the leader lease and CheckQuorum safe.
        self._lease_elapsed = 0
        self._randomized_timeout = 0
        self._reset_randomized_timeout()

        self._votes: dict[str, bool] = {}
        self.progress: dict[str, Progress] = {}
        self._term_start_index = 0
        self._transfer_target: str | None = None
        self._transfer_elapsed = 0
        self._sent_timeout_now = False

        # ReadIndex / lease bookkeeping (leader only): every leader message carries the current
        # read sequence; followers echo it, so an echo of seq s proves we still led when s began.
        self._seq = 0
        self._seq_ticks: dict[int, int] = {}
        self._pending_reads: list[tuple[int, int, str | None, int]] = []  # seq, index, origin, ctx
        self._deferred_reads: list[tuple[str | None, int]] = []
        self._need_heartbeat = False
        self._commit_dirty = False
        # A commit advance whose notice to the followers waits (commit_notice_delay > 0): the
        # next AppendEntries carries it, else the driver calls notify_commit() after the delay.
        self.commit_notice_pending = False
        # Leader: something may now be sendable (a probe unpaused, inflight slots freed, new
        # entries); the next ready() runs the replication flush.
        self._flush_pending = False

        # Incoming chunked snapshot (follower): (leader, term, index, log_term), a buffer of the
        # announced total size (filled in place: no growing copies, no final copy) and the count
        # of bytes received so far.
        self._incoming_key: tuple[str, int, int, int] | None = None
        self._incoming: bytearray | SnapshotBuffer = bytearray()
        self._incoming_len = 0
        # What an incoming snapshot is placed into: memory by default; the driver gives a
        # file-backed buffer when it has a data dir, so a large snapshot is never in memory.
        self.snapshot_buffer: Callable[[int], bytearray | SnapshotBuffer] = bytearray

        # Output bookkeeping.
        self._stable_index = self.log.last_index  # durable prefix of the in-memory log
        self._unstable_from = self.log.last_index + 1  # first entry not yet handed to storage
        self._applied_out = 0 if self.snapshot is None else self.snapshot.meta.index
        self._hs_out = HardState(self.term, self.vote, self.commit)
        self._out = Ready()

    # ------------------------------------------------------------------ restore / bootstrap

    def _load(self, state: PersistentState) -> None:
        snap = state.snapshot
        s_index = snap.meta.index if snap else 0
        s_term = snap.meta.term if snap else 0
        entries = sorted(state.entries, key=lambda e: e.index)
        for a, b in itertools.pairwise(entries):
            if b.index != a.index + 1:
                raise StorageError(f"raft log has a gap between {a.index} and {b.index}")
        if entries:
            first, last = entries[0].index, entries[-1].index
            if first > s_index + 1:
                raise StorageError(f"raft log starts at {first} but the snapshot ends at {s_index}")
            if last < s_index:
                entries = []
            elif first <= s_index and entries[s_index - first].term != s_term:
                entries = []  # a log from before an installed snapshot: it is superseded
        if entries and entries[0].index <= s_index:
            self.log = RaftLog(entries[0].index, entries[0].term)
            self.log.append(entries[1:])
        else:
            self.log = RaftLog(s_index, s_term)
            self.log.append(entries)
        if snap is not None:
            self.snapshot = snap
            self._conf_history = [(snap.meta.configuration_index, snap.meta.configuration)]
        for e in self.log.entries:
            if e.kind is EntryKind.CONFIG and e.index > s_index:
                self._conf_history.append((e.index, Configuration.decode(e.data)))
        # Not raised to the snapshot's index: the durable commit index reaches it for every
        # snapshot taken here or installed from a leader (saved with, or after, the commit
        # that covers it), but not for a user restore (`restore`) whose NOOP was not known
        # committed when this server stopped. Counting that one as committed would make this
        # server acknowledge a new leader's entries it does not hold; left below, it stays
        # as it was at run time (it serves the restored state, matches nothing older, and
        # heals by the next snapshot a leader sends). The durable commit is the marker.
        self.commit = min(state.hard_state.commit, self.log.last_index)

    def is_empty(self) -> bool:
        return self.term == 0 and self.log.last_index == 0 and self.snapshot is None

    def bootstrap(self, configuration: Configuration) -> None:
        """Seed a fresh node with the initial configuration as entry 1 of term 1.

        Every server bootstrapped together must receive the same configuration (entry 1 must be
        identical everywhere for the log matching property to hold).
        """
        if not self.is_empty():
            raise StorageError("bootstrap refused: this node already has state")
        if not configuration.voters():
            raise ValueError("bootstrap needs at least one voter")
        self.term = 1
        entry = Entry(1, 1, EntryKind.CONFIG, configuration.encode())
        self._append([entry])

    # ------------------------------------------------------------------ public queries

    @property
    def configuration(self) -> Configuration:
        return self._conf_history[-1][1] if self._conf_history else Configuration()

    @property
    def configuration_index(self) -> int:
        return self._conf_history[-1][0] if self._conf_history else 0

    def configuration_at(self, index: int) -> tuple[int, Configuration]:
        """The configuration in force at log index `index` (for snapshots taken there)."""
        found: tuple[int, Configuration] = (0, Configuration())
        for ci, conf in self._conf_history:
            if ci <= index:
                found = (ci, conf)
        return found

    @property
    def applied(self) -> int:
        return self._applied_out

    @property
    def stable_index(self) -> int:
        return self._stable_index

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def term_start_index(self) -> int:
        """Index of the no-op this leader appended on election."""
        return self._term_start_index

    @property
    def committed_in_term(self) -> bool:
        return self.role is Role.LEADER and self.commit >= self._term_start_index

    def leader_hint(self) -> tuple[str | None, str | None]:
        if self.lead is None:
            return None, None
        s = self.configuration.get(self.lead)
        return self.lead, s.address if s else None

    def _promotable(self) -> bool:
        return self.configuration.is_voter(self.id)

    def _sole_voter(self) -> bool:
        """The only voter has nobody to wait for: it may campaign at once (a single-server
        cluster, e.g. a dev agent, is up in one tick instead of an election timeout).

        Not while it follows a leader, though: that can only be a removed or demoted leader
        finishing its last change, which may hold a lease on this voter's acknowledgements."""
        return self.lead is None and self.configuration.voters() == [self.id]

    def ticks(self) -> int:
        return self._ticks

    def ticks_since_leader_contact(self) -> int:
        return self._lease_elapsed

    def has_lease(self) -> bool:
        """True while a quorum acknowledged a message we sent less than lease_ticks ago."""
        return self.lease_seq() is not None

    def lease_seq(self) -> int | None:
        """The read sequence a quorum echoed when has_lease holds, else None: a driver with
        a clock also times the lease from when that sequence first left (RaftNode.has_lease),
        since ticks lag real time while the driver is busy."""
        if (
            not self.cfg.check_quorum  # without it, followers do not honour the lease
            or not self.committed_in_term
            or self._transfer_target
            or self._sent_timeout_now  # a TimeoutNow in flight may elect someone at any time
        ):
            return None
        q = self._quorum_acked_seq()
        if q is None:
            return None
        started = self._seq_ticks.get(q)
        if started is None or self._ticks - started >= self.cfg.lease_ticks:
            return None
        return q

    @property
    def read_seq(self) -> int:
        """The newest read sequence (leader); every message sent carries the one current then."""
        return self._seq

    # ------------------------------------------------------------------ output

    def _send_now(self, m: Message) -> None:
        self._out.messages_now.append(m)

    def _send_after(self, m: Message) -> None:
        self._out.messages_after.append(m)

    def ready(self) -> Ready:
        """Hand out every pending output; the caller must persist, send and apply as documented."""
        self._flush_leader()
        rd = self._out
        self._out = Ready()
        hs = HardState(self.term, self.vote, self.commit)
        if hs != self._hs_out:
            rd.hard_state = hs
            self._hs_out = hs
        if self._unstable_from <= self.log.last_index:
            rd.entries = self.log.slice(self._unstable_from, self.log.last_index + 1)
            self._unstable_from = self.log.last_index + 1
        limit = self._apply_limit()
        if limit > self._applied_out:
            rd.committed = self.log.slice(self._applied_out + 1, limit + 1)
            self._applied_out = limit
        self._release()
        return rd

    def _release(self) -> None:
        """Drop from memory the entries this server has applied and holds durably and (on a
        leader) every peer matched, but for `memory_trailing_entries` of them when there are
        peers (a briefly lagging follower, or a new leader's, catches up from memory)."""
        point = min(self._applied_out, self._stable_index)
        if self.progress:
            point = min(point, *(pr.match for pr in self.progress.values()))
        if len(self.configuration.servers) > 1:
            point -= self.cfg.memory_trailing_entries
        if point > self.log.released:
            self.log.release_to(point)

    def has_ready(self) -> bool:
        o = self._out
        return bool(
            o.messages_now
            or o.messages_after
            or o.snapshot is not None
            or o.read_states
            or o.read_failures
            or self._unstable_from <= self.log.last_index
            or HardState(self.term, self.vote, self.commit) != self._hs_out
            or self._apply_limit() > self._applied_out
            or (
                self.role is Role.LEADER
                and (self._need_heartbeat or self._commit_dirty or self._flush_pending)
            )
        )

    def _apply_limit(self) -> int:
        """How far entries may be applied: a follower applies what is durable in its own log
        too; a leader whatever is committed, which is durable on a quorum (with enough
        followers' acknowledgements its own write is not needed for that, so it is not
        waited for: it is off the path when it is the slowest of the quorum)."""
        if self.role is Role.LEADER:
            return self.commit
        return min(self.commit, self._stable_index)

    def on_persisted(self, index: int, term: int) -> None:
        """Storage made a Ready durable; its persist_mark was (index, term)."""
        if index > self._stable_index and self.log.term(index) == term:
            self._flush_pending = True
            self._stable_index = index
            if self.role is Role.LEADER:
                self._maybe_commit()

    # ------------------------------------------------------------------ time

    def tick(self) -> None:
        self._flush_pending = True
        self._ticks += 1
        self._lease_elapsed += 1
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._election_elapsed += 1
            if self._promotable() and (
                self._election_elapsed >= self._randomized_timeout or self._sole_voter()
            ):
                self._election_elapsed = 0
                self._campaign(pre=self.cfg.pre_vote)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._transfer_target is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.cfg.election_ticks:
                self._transfer_target = None  # target did not take over in time: resume
        if self._election_elapsed >= self.cfg.election_ticks:
            self._election_elapsed = 0
            if self.cfg.check_quorum and not self._quorum_active():
                self._become_follower(self.term, None)
                return
            for pid, pr in self.progress.items():
                if pid != self.id:
                    pr.recent_active = False
            self._prune_seq_ticks()
        if self._heartbeat_elapsed >= self.cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_active(self) -> bool:
        voters = self.configuration.voters()
        active = sum(
            1
            for v in voters
            if v == self.id or (v in self.progress and self.progress[v].recent_active)
        )
        return active >= len(voters) // 2 + 1

    def _reset_randomized_timeout(self) -> None:
        e = self.cfg.election_ticks
        self._randomized_timeout = e + self.rng.randrange(e)

    # ------------------------------------------------------------------ role changes

    def _become_follower(self, term: int, lead: str | None) -> None:
        was_leader = self.role is Role.LEADER
        if term != self.term:
            self.term = term
            self.vote = None
        self.role = Role.FOLLOWER
        self.lead = lead
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        if was_leader:
            self._abort_leader_state()

    def _abort_leader_state(self) -> None:
        self.progress = {}
        self._transfer_target = None
        for _seq, _index, origin, ctx in self._pending_reads:
            self._fail_read(origin, ctx)
        for origin, ctx in self._deferred_reads:
            self._fail_read(origin, ctx)
        self._pending_reads = []
        self._deferred_reads = []
        self._seq_ticks = {}
        self._need_heartbeat = False
        self._commit_dirty = False

    def _campaign(self, pre: bool, transfer: bool = False) -> None:
        if pre:
            self.role = Role.PRE_CANDIDATE
            self.lead = None
            msg_type, msg_term = MsgType.PRE_VOTE, self.term + 1
        else:
            self.role = Role.CANDIDATE
            self.term += 1
            self.vote = self.id
            self.lead = None
            msg_type, msg_term = MsgType.VOTE, self.term
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        self._votes = {self.id: True}
        if self._tally() == "won":
            self._won_election(pre)
            return
        for v in self.configuration.voters():
            if v == self.id:
                continue
            self._send_after(
                Message(
                    msg_type,
                    self.id,
                    v,
                    msg_term,
                    index=self.log.last_index,
                    log_term=self.log.last_term,
                    transfer=transfer,
                )
            )

    def _won_election(self, pre: bool) -> None:
        if pre:
            self._campaign(pre=False)
        else:
            self._become_leader()

    def _tally(self) -> str:
        voters = self.configuration.voters()
        quorum = len(voters) // 2 + 1
        granted = sum(1 for v in voters if self._votes.get(v) is True)
        rejected = sum(1 for v in voters if self._votes.get(v) is False)
        if granted >= quorum:
            return "won"
        if rejected >= quorum:
            return "lost"
        return "pending"

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.lead = self.id
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._transfer_target = None
        self._sent_timeout_now = False
        self._seq = 1
        self._seq_ticks = {1: self._ticks}
        self.progress = {}
        self._sync_progress()
        noop = Entry(self.term, self.log.last_index + 1, EntryKind.NOOP)
        self._term_start_index = noop.index
        self._append([noop])
        self._maybe_commit()  # single voter: commits once persisted; harmless otherwise

    def _sync_progress(self) -> None:
        """Track exactly the servers of the current configuration (other than us)."""
        ids = set(self.configuration.ids())
        for pid in list(self.progress):
            if pid not in ids:
                del self.progress[pid]
        for pid in ids:
            if pid != self.id and pid not in self.progress:
                self.progress[pid] = Progress(
                    match=0, next=self.log.last_index + 1, recent_active=True
                )

    # ------------------------------------------------------------------ log mutation

    def _append(self, entries: list[Entry]) -> None:
        """Append entries (truncating a conflicting suffix first); configs apply on append."""
        if not entries:
            return
        first = entries[0].index
        conf_changed = False
        if first <= self.log.last_index:
            if first <= self.commit:
                raise SafetyViolation(f"{self.id}: overwriting committed entry {first}")
            self.log.truncate_from(first)
            self._unstable_from = min(self._unstable_from, first)
            self._stable_index = min(self._stable_index, first - 1)
            before = len(self._conf_history)
            self._conf_history = [h for h in self._conf_history if h[0] < first]
            conf_changed = len(self._conf_history) != before
        self.log.append(entries)
        self._flush_pending = True
        for e in entries:
            if e.kind is EntryKind.CONFIG:
                self._conf_history.append((e.index, Configuration.decode(e.data)))
                conf_changed = True
        if conf_changed:
            self._on_config_changed()

    def _on_config_changed(self) -> None:
        if self.role is Role.LEADER:
            self._sync_progress()
            if self._transfer_target and not self.configuration.is_voter(self._transfer_target):
                self._transfer_target = None
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE) and not self._promotable():
            self._become_follower(self.term, None)

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            self.commit = index

    # ------------------------------------------------------------------ leader: proposals

    def propose(self, data: bytes) -> tuple[int, int]:
        """Append a NORMAL entry; returns its (index, term). Leader only."""
        self._check_can_propose()
        e = Entry(self.term, self.log.last_index + 1, EntryKind.NORMAL, data)
        self._append([e])
        return e.index, e.term

    def restore(self, data: bytes | SnapshotData) -> tuple[Snapshot, int, int]:
        """Leader only: make `data` (a snapshot in the application's format) the state at a new
        index, as hashicorp/raft's user restore does. The snapshot takes index last + 1 in this
        term and replaces the whole log; followers receive it by InstallSnapshot (their next
        entry is no longer in the log). A NOOP entry follows it: once that commits, a quorum
        holds the restored state. Returns (snapshot, noop index, term); the caller installs
        the state in its state machine and must not restore from the Ready's snapshot again.

        Uncommitted entries are discarded with the log (the restore replaces what they wrote).
        As with a snapshot installed from a leader, the snapshot counts as applied here at
        once; until the NOOP commits, a new leader elected without this server would not have
        it (the caller reports that outcome as unknown)."""
        self._check_can_propose()
        if not self.committed_in_term or self.configuration_index > self.commit:
            raise ConfigChangeInProgress("a configuration change is still uncommitted")
        index = self.log.last_index + 1
        conf_index, conf = self.configuration_index, self.configuration
        snap = Snapshot(SnapshotMeta(index, self.term, conf, conf_index), data)
        self.log.reset(index, self.term)
        self.snapshot = snap
        self._out.snapshot = snap
        self._applied_out = index
        self._stable_index = min(self._stable_index, index - 1)  # durable once persisted
        self._unstable_from = index + 1
        self._conf_history = [(conf_index, conf)]
        for pr in self.progress.values():
            pr.next = min(pr.next, index)  # ensures an InstallSnapshot
        noop = Entry(self.term, index + 1, EntryKind.NOOP)
        self._append([noop])
        return snap, noop.index, noop.term

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(*self.leader_hint())
        if self._transfer_target is not None:
            raise TransferInProgress(None, None)

    def change_config(self, op: str, server_id: str, address: str | None = None) -> tuple[int, int]:
        """One membership change at a time: op is add_voter, add_nonvoter, promote or remove.

        The new configuration takes effect as soon as its entry is appended (Raft dissertation,
        4.1); a second change waits until the first is committed, and none is allowed before the
        leader committed an entry of its own term.
        """
        self._check_can_propose()
        if not self.committed_in_term or self.configuration_index > self.commit:
            raise ConfigChangeInProgress("a configuration change is still uncommitted")
        conf = self.configuration
        current = conf.get(server_id)
        if op in ("add_voter", "promote"):
            if current is None and (op == "promote" or not address):
                raise ValueError(f"unknown server {server_id!r}")
            addr = address or (current.address if current else "")
            new = conf.with_server(Server(server_id, addr, Suffrage.VOTER))
        elif op == "add_nonvoter":
            if not address and current is None:
                raise ValueError("add_nonvoter needs an address")
            suffrage = current.suffrage if current is not None else Suffrage.NONVOTER
            addr = address or (current.address if current else "")
            new = conf.with_server(Server(server_id, addr, suffrage))
        elif op == "demote":
            if current is None:
                raise ValueError(f"unknown server {server_id!r}")
            new = conf.with_server(Server(server_id, current.address, Suffrage.NONVOTER))
        elif op == "remove":
            new = conf.without(server_id)
        else:
            raise ValueError(f"unknown configuration change {op!r}")
        if not new.voters():
            raise ValueError("a configuration must keep at least one voter")
        e = Entry(self.term, self.log.last_index + 1, EntryKind.CONFIG, new.encode())
        self._append([e])
        return e.index, e.term

    def transfer_leadership(self, target: str | None = None) -> str:
        """Hand leadership to `target` (or the most up-to-date voter); returns the target id."""
        if self.role is not Role.LEADER:
            raise NotLeader(*self.leader_hint())
        if target is None:
            best = None
            for pid in self.configuration.voters():
                if pid == self.id or pid not in self.progress:
                    continue
                if best is None or self.progress[pid].match > self.progress[best].match:
                    best = pid
            if best is None:
                raise ValueError("no other voter to transfer leadership to")
            target = best
        if target == self.id:
            return target
        if not self.configuration.is_voter(target):
            raise ValueError(f"{target!r} is not a voter")
        self._transfer_target = target
        self._transfer_elapsed = 0
        if self.progress[target].match == self.log.last_index:
            self._send_timeout_now(target)
        return target

    def _send_timeout_now(self, target: str) -> None:
        self._sent_timeout_now = True
        self._send_now(Message(MsgType.TIMEOUT_NOW, self.id, target, self.term))

    # ------------------------------------------------------------------ reads

    def read_index(self, ctx: int) -> None:
        """Ask for a linearizable read point; answered by a read state (ctx, index) or failure.

        On a follower the request is forwarded to the leader, which confirms its leadership with
        a heartbeat round and answers with its commit index at the time of the request.
        """
        if self.role is Role.LEADER:
            self._leader_read(None, ctx)
        elif self.lead is not None:
            self._send_now(Message(MsgType.READ_INDEX, self.id, self.lead, self.term, ctx=ctx))
        else:
            self._out.read_failures.append(ctx)

    def _leader_read(self, origin: str | None, ctx: int) -> None:
        if not self.committed_in_term:
            self._deferred_reads.append((origin, ctx))
            return
        voters = self.configuration.voters()
        if voters == [self.id]:
            self._answer_read(origin, ctx, self.commit)
            return
        self._new_seq()
        self._pending_reads.append((self._seq, self.commit, origin, ctx))
        self._need_heartbeat = True

    def _new_seq(self) -> None:
        self._seq += 1
        self._seq_ticks[self._seq] = self._ticks

    def _answer_read(self, origin: str | None, ctx: int, index: int) -> None:
        if origin is None:
            self._out.read_states.append((ctx, index))
        else:
            self._send_now(
                Message(MsgType.READ_INDEX_RESP, self.id, origin, self.term, index=index, ctx=ctx)
            )

    def _fail_read(self, origin: str | None, ctx: int) -> None:
        if origin is None:
            self._out.read_failures.append(ctx)
        else:
            self._send_now(
                Message(MsgType.READ_INDEX_RESP, self.id, origin, self.term, ctx=ctx, reject=True)
            )

    def _quorum_acked_seq(self) -> int | None:
        voters = self.configuration.voters()
        if not voters:
            return None
        vals = sorted(
            (
                self._seq
                if v == self.id
                else (self.progress[v].acked_seq if v in self.progress else 0)
                for v in voters
            ),
            reverse=True,
        )
        return vals[len(voters) // 2]

    def _release_reads(self) -> None:
        if not self._pending_reads:
            return
        q = self._quorum_acked_seq()
        if q is None:
            return
        keep = []
        for item in self._pending_reads:
            if item[0] <= q:
                self._answer_read(item[2], item[3], item[1])
            else:
                keep.append(item)
        self._pending_reads = keep

    def _prune_seq_ticks(self) -> None:
        horizon = self._ticks - 2 * self.cfg.election_ticks
        for s in [s for s, t in self._seq_ticks.items() if t < horizon and s != self._seq]:
            del self._seq_ticks[s]

    # ------------------------------------------------------------------ leader: replication

    def _flush_leader(self) -> None:
        self._flush_pending = False
        if self.role is not Role.LEADER:
            return
        if self._need_heartbeat:
            self._broadcast_heartbeat(new_seq=False)
        last = self.log.last_index
        told = True  # every follower got an AppendEntries carrying the commit index
        for pid, pr in self.progress.items():
            if pr.state is ProgressState.SNAPSHOT:
                told = False
                continue
            if pr.state is ProgressState.PROBE:
                told = False
                if not pr.probe_sent:
                    self._send_append(pid, pr)
                continue
            sent = False
            while len(pr.inflight) < self.cfg.max_inflight and pr.next <= last:
                if not self._send_append(pid, pr):
                    break
                sent = True
            if (
                not sent
                and (self._commit_dirty or pr.needs_append)
                and pr.state is ProgressState.REPLICATE
                and len(pr.inflight) < self.cfg.max_inflight
            ):
                # Empty: detects a gap (answered), or only carries the commit index: then a
                # notice, which the follower does not answer unless it refuses it.
                self._send_append(pid, pr, notice=not pr.needs_append)
                sent = True
            told = told and sent
            pr.needs_append = False
        self._commit_dirty = False
        if told:
            self.commit_notice_pending = False

    def _send_append(self, pid: str, pr: Progress, notice: bool = False) -> bool:
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None or (pr.next <= self.log.released and pr.next <= self.log.last_index):
            self._start_snapshot(pid, pr)
            return False
        entries: list[Entry] = []
        if pr.next <= self.log.last_index:
            hi = min(self.log.last_index + 1, pr.next + self.cfg.max_entries_per_msg)
            entries = self.log.slice(pr.next, hi, self.cfg.max_bytes_per_msg)
        self._send_now(
            Message(
                MsgType.APPEND,
                self.id,
                pid,
                self.term,
                index=prev,
                log_term=prev_term,
                entries=entries,
                commit=self.commit,
                ctx=self._seq,
                done=notice and not entries,
            )
        )
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        elif entries:
            pr.next = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)
        return True

    def _broadcast_heartbeat(self, new_seq: bool = True) -> None:
        if new_seq:
            self._new_seq()
        self._need_heartbeat = False
        for pid, pr in self.progress.items():
            self._send_now(
                Message(
                    MsgType.HEARTBEAT,
                    self.id,
                    pid,
                    self.term,
                    commit=min(pr.match, self.commit),
                    ctx=self._seq,
                )
            )

    def _start_snapshot(self, pid: str, pr: Progress) -> None:
        if self.snapshot is None and self.log.base_index > 0:
            raise SafetyViolation(f"{self.id}: log compacted without a snapshot")
        if self.snapshot is None or self.snapshot.meta.index < self.log.released:
            # The follower would next need entries released from memory: wait for a
            # snapshot that covers them (the driver takes one), probing again meanwhile.
            self.snapshot_wanted = max(self.snapshot_wanted, self.log.released)
            if pr.state is not ProgressState.PROBE:
                pr.become_probe()
            pr.probe_sent = True  # the next heartbeat answer retries
            return
        pr.become_snapshot(self.snapshot.meta.index, self._ticks)
        self._send_snapshot_chunk(pid, pr)

    def _send_snapshot_chunk(self, pid: str, pr: Progress) -> None:
        snap = self.snapshot
        assert snap is not None
        if pr.pending_snapshot != snap.meta.index:  # a newer snapshot replaced it: restart
            pr.become_snapshot(snap.meta.index, self._ticks)
        total = len(snap.data)
        off = min(pr.snap_offset, total)
        chunk = snap.data[off : off + self.cfg.snapshot_chunk_size]
        pr.snap_sent_tick = self._ticks
        self._send_now(
            Message(
                MsgType.SNAPSHOT,
                self.id,
                pid,
                self.term,
                index=snap.meta.index,
                log_term=snap.meta.term,
                snap_meta=snap.meta,
                offset=off,
                data=chunk,
                total=total,
                done=off + len(chunk) >= total,
                ctx=self._seq,
            )
        )

    def _maybe_commit(self) -> None:
        voters = self.configuration.voters()
        if not voters:
            return
        matches = sorted(
            (
                self._stable_index
                if v == self.id
                else (self.progress[v].match if v in self.progress else 0)
                for v in voters
            ),
            reverse=True,
        )
        n = matches[len(voters) // 2]
        # Only entries of the current term are committed by counting replicas (Raft 5.4.2).
        if n > self.commit and self.log.term(n) == self.term:
            self.commit = n
            if self.cfg.commit_notice_delay > 0:
                self.commit_notice_pending = True
            else:
                self._commit_dirty = True
            self._on_leader_commit()

    def notify_commit(self) -> None:
        """Tell the followers the commit index now, with an AppendEntries of its own (the
        driver's timer after commit_notice_delay, when no AppendEntries carried it since)."""
        if self.commit_notice_pending and self.role is Role.LEADER:
            self._commit_dirty = True
        self.commit_notice_pending = False

    def _on_leader_commit(self) -> None:
        if self._deferred_reads and self.committed_in_term:
            deferred, self._deferred_reads = self._deferred_reads, []
            for origin, ctx in deferred:
                self._leader_read(origin, ctx)
        if self.configuration_index <= self.commit and not self._promotable():
            # Removed (or demoted) leader: it managed the cluster until the change committed.
            best = None
            for pid in self.configuration.voters():
                pr = self.progress.get(pid)
                if pr is not None and pr.match == self.log.last_index:
                    best = pid
                    break
            if best is not None:
                self._send_timeout_now(best)
            self._become_follower(self.term, None)

    # ------------------------------------------------------------------ receiving

    def step(self, m: Message) -> None:
        """Process one message from a peer."""
        if m.dst != self.id:
            return
        if m.term > self.term:
            if m.type in (MsgType.VOTE, MsgType.PRE_VOTE) and self._in_lease(m):
                return  # we heard from a live leader recently: ignore the disruption
            if m.type is MsgType.PRE_VOTE or (m.type is MsgType.PRE_VOTE_RESP and not m.reject):
                pass  # pre-votes never change our term
            elif m.type in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, None)
        elif m.term < self.term:
            if m.type in (MsgType.APPEND, MsgType.HEARTBEAT):
                # Tell a stale leader about the new term so it steps down.
                self._send_after(Message(MsgType.APPEND_RESP, self.id, m.src, self.term))
            elif m.type is MsgType.PRE_VOTE:
                self._send_after(
                    Message(MsgType.PRE_VOTE_RESP, self.id, m.src, self.term, reject=True)
                )
            elif m.type is MsgType.READ_INDEX:
                self._send_now(
                    Message(
                        MsgType.READ_INDEX_RESP, self.id, m.src, self.term, ctx=m.ctx, reject=True
                    )
                )
            return

        self._flush_pending = True
        t = m.type
        if t in (MsgType.VOTE, MsgType.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    def _in_lease(self, m: Message) -> bool:
        if not self.cfg.check_quorum or m.transfer:
            return False
        if self.role is Role.LEADER:
            return True
        return self._lease_elapsed < self.cfg.election_ticks

    def _handle_vote_request(self, m: Message) -> None:
        pre = m.type is MsgType.PRE_VOTE
        resp_type = MsgType.PRE_VOTE_RESP if pre else MsgType.VOTE_RESP
        can_vote = (
            self.vote == m.src
            or (self.vote is None and self.lead is None)
            or (pre and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._send_after(Message(resp_type, self.id, m.src, m.term))
            if not pre:
                self._election_elapsed = 0
                self.vote = m.src
        else:
            self._send_after(Message(resp_type, self.id, m.src, self.term, reject=True))

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        if t in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT):
            self._become_follower(m.term, m.src)
            self._step_follower(m)
            return
        if t is MsgType.READ_INDEX:
            self._send_now(
                Message(MsgType.READ_INDEX_RESP, self.id, m.src, self.term, ctx=m.ctx, reject=True)
            )
            return
        want = MsgType.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MsgType.VOTE_RESP
        if t is not want:
            return
        if self.role is Role.PRE_CANDIDATE and not m.reject and m.term != self.term + 1:
            return
        if self.configuration.is_voter(m.src):
            self._votes.setdefault(m.src, not m.reject)
        outcome = self._tally()
        if outcome == "won":
            self._won_election(self.role is Role.PRE_CANDIDATE)
        elif outcome == "lost":
            self._become_follower(self.term, None)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t in (MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT):
            self._election_elapsed = 0
            self._lease_elapsed = 0
            self.lead = m.src
            if t is MsgType.APPEND:
                self._handle_append(m)
            elif t is MsgType.HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif t is MsgType.TIMEOUT_NOW:
            if self._promotable():
                self._campaign(pre=False, transfer=True)
        elif t is MsgType.READ_INDEX:
            # A forwarded read reached a follower (leadership moved): refuse, the origin retries.
            self._send_now(
                Message(MsgType.READ_INDEX_RESP, self.id, m.src, self.term, ctx=m.ctx, reject=True)
            )
        elif t is MsgType.READ_INDEX_RESP:
            if m.reject:
                self._out.read_failures.append(m.ctx)
            else:
                self._out.read_states.append((m.ctx, m.index))

    def _handle_append(self, m: Message) -> None:
        def reply(**kw: object) -> None:
            self._send_after(
                Message(MsgType.APPEND_RESP, self.id, m.src, self.term, ctx=m.ctx, **kw)  # type: ignore[arg-type]
            )

        if m.index < self.commit:
            reply(index=self.commit)
            return
        if self.log.term(m.index) == m.log_term:
            last_new = m.index + len(m.entries)
            conflict = 0
            for e in m.entries:
                if self.log.term(e.index) != e.term:
                    conflict = e.index
                    break
            if conflict:
                self._append(m.entries[conflict - m.entries[0].index :])
            self._commit_to(min(m.commit, last_new))
            if not m.notice:
                # A notice acknowledges nothing new: answering it would cost the follower a
                # send and the leader a wake-up per write (the leader learns of a gap from
                # the next write's answer or the heartbeat's).
                reply(index=last_new)
            return
        hint_index, hint_term = self._find_conflict_by_term(
            min(m.index, self.log.last_index), m.log_term
        )
        reply(index=m.index, reject=True, hint_index=hint_index, hint_term=hint_term)

    def _find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest index <= `index` whose entry's term is <= `term` (with that term)."""
        while index > 0:
            t = self.log.term(index)
            if t is None:
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    def _handle_heartbeat(self, m: Message) -> None:
        self._commit_to(min(m.commit, self.log.last_index))
        resp = Message(MsgType.HEARTBEAT_RESP, self.id, m.src, self.term, ctx=m.ctx)
        if self.term == self._hs_out.term and self.vote == self._hs_out.vote:
            # Answered at once (as hashicorp/raft's heartbeat fast path): it acknowledges no
            # entry, only that no newer term was seen, and a follower whose storage is busy
            # (saving a large snapshot) must still show the leader it is there, or CheckQuorum
            # deposes the leader. A step that changed the term or vote waits for storage.
            self._send_now(resp)
        else:
            self._send_after(resp)

    def _handle_snapshot(self, m: Message) -> None:
        def reply(**kw: object) -> None:
            self._send_after(
                Message(MsgType.SNAPSHOT_RESP, self.id, m.src, self.term, ctx=m.ctx, **kw)  # type: ignore[arg-type]
            )

        if m.index <= self.commit:
            self._incoming_key = None
            self._incoming = bytearray()
            reply(index=self.commit, done=True)
            return
        key = (m.src, m.term, m.index, m.log_term)
        if key != self._incoming_key or len(self._incoming) != m.total:
            if m.offset != 0:
                reply(index=m.index, offset=0)
                return
            self._incoming_key = None
            self._incoming = bytearray()
            try:
                self._incoming = self.snapshot_buffer(m.total)
            except OSError:
                return  # no room for it (a full disk): the leader resends after a while
            self._incoming_key = key
            self._incoming_len = 0
        end = m.offset + len(m.data)
        if m.offset == self._incoming_len and end <= m.total:
            try:
                self._incoming[m.offset : end] = m.data
            except OSError:
                return  # not written (a full disk): the leader resends this chunk later
            self._incoming_len = end
        if not (m.done and self._incoming_len == m.total):
            reply(index=m.index, offset=self._incoming_len)
            return
        assert m.snap_meta is not None
        data = self._incoming  # handed over as is: a bytes copy would double the peak
        self._incoming_key = None
        self._incoming = bytearray()
        self._install_snapshot(Snapshot(m.snap_meta, data))
        reply(index=m.index, done=True)

    def _install_snapshot(self, snap: Snapshot) -> None:
        meta = snap.meta
        if self.log.term(meta.index) == meta.term:
            # We already have the snapshot's last entry: everything up to it is committed.
            self._commit_to(meta.index)
            return
        self.log.reset(meta.index, meta.term)
        self.snapshot = snap
        self._out.snapshot = snap
        self.commit = meta.index
        self._applied_out = meta.index
        self._stable_index = min(self._stable_index, meta.index)
        self._unstable_from = meta.index + 1
        self._conf_history = [(meta.configuration_index, meta.configuration)]
        self._on_config_changed()

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t is MsgType.READ_INDEX:
            if m.src in self.progress:
                self._leader_read(m.src, m.ctx)
            return
        if t not in _RESPONSES:
            return
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        pr.last_contact_tick = self._ticks
        if m.ctx > pr.acked_seq:
            pr.acked_seq = m.ctx
        if t is MsgType.APPEND_RESP:
            self._handle_append_resp(m, pr)
        elif t is MsgType.HEARTBEAT_RESP:
            self._handle_heartbeat_resp(m, pr)
        else:
            self._handle_snapshot_resp(m, pr)
        self._release_reads()

    def _handle_append_resp(self, m: Message, pr: Progress) -> None:
        if m.reject and pr.state is ProgressState.PROBE and m.index == pr.next - 1 <= pr.match:
            # The follower refuses the entry right after the point it acknowledged: it holds a
            # user restore that never committed (its log resumes past the snapshot, its commit
            # below it) and can only catch up from a snapshot. Send ours if it covers more;
            # else probe again on the next heartbeat, not in a tight loop.
            if self.snapshot is not None and self.snapshot.meta.index > pr.match:
                self._start_snapshot(m.src, pr)
            return
        if m.reject:
            probe = m.hint_index
            if m.hint_term > 0:
                probe, _ = self._find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.maybe_decr_to(m.index, probe) and pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            return
        if pr.state is ProgressState.REPLICATE:
            pr.free_to(m.index)
        updated = pr.maybe_update(m.index)
        # A probe accepted at the match point already known (after a snapshot at the
        # leader's last index) has found the match too: else it would be re-sent at once,
        # in a loop, until the next write.
        if updated or (pr.state is ProgressState.PROBE and m.index == pr.match):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_probe()
            if updated:
                self._maybe_commit()
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = False
        if (
            self.role is Role.LEADER
            and self._transfer_target == m.src
            and pr.match == self.log.last_index
        ):
            self._send_timeout_now(m.src)

    def _handle_heartbeat_resp(self, m: Message, pr: Progress) -> None:
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = False
        elif pr.state is ProgressState.REPLICATE:
            if len(pr.inflight) >= self.cfg.max_inflight:
                pr.inflight.popleft()
            if pr.match < self.log.last_index:
                pr.needs_append = True
        elif self._ticks - pr.snap_sent_tick >= 3 * self.cfg.heartbeat_ticks:
            self._send_snapshot_chunk(m.src, pr)  # chunk or its answer was lost: resend

    def _handle_snapshot_resp(self, m: Message, pr: Progress) -> None:
        if m.done:
            pr.maybe_update(m.index)
            if pr.state is ProgressState.SNAPSHOT:
                pr.become_probe()
            self._maybe_commit()
            return
        if pr.state is ProgressState.SNAPSHOT and m.index == pr.pending_snapshot:
            pr.snap_offset = m.offset
            self._send_snapshot_chunk(m.src, pr)

    # ------------------------------------------------------------------ local snapshots

    def _every_peer_has(self, index: int) -> bool:
        """Leader only: has every other server in the configuration matched `index`?"""
        return self.is_leader and all(pr.match >= index for pr in self.progress.values())

    def compact(self, snapshot: Snapshot, trailing: int) -> None:
        """The application saved a snapshot at snapshot.meta.index (<= applied): keep `trailing`
        entries before it (none on a leader whose peers all have it) and drop the rest."""
        index = snapshot.meta.index
        if index > self._applied_out:
            raise ValueError("cannot snapshot beyond the applied index")
        if self.snapshot is not None and index <= self.snapshot.meta.index:
            return
        self.snapshot = snapshot
        if index >= self.snapshot_wanted:
            self.snapshot_wanted = 0
        cut = index - trailing
        if trailing and self._every_peer_has(index):
            # The trailing entries only serve a follower that is behind the snapshot; when
            # every peer already holds it, memory keeps none of them (the disk still does,
            # and a follower that falls behind later needs only entries after `index`).
            cut = index
        if cut > self.log.base_index:
            self.log.compact_to(cut)
        # Keep the configuration in force at the compaction point and everything after it.
        keep = [h for h in self._conf_history if h[0] > index]
        base = self.configuration_at(index)
        self._conf_history = [base, *keep]
