"""Unit tests of RaftCore against the rules of the Raft paper and dissertation.

A tiny synchronous harness: persistence is acknowledged immediately, messages are delivered in
FIFO order unless a test drops or holds them.
"""

from __future__ import annotations

import random

import msgpack
import pytest

from consulpy.raft.config import RaftConfig
from consulpy.raft.core import PersistentState, RaftCore, Role
from consulpy.raft.errors import ConfigChangeInProgress, NotLeader, TransferInProgress
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    Server,
    Snapshot,
    SnapshotMeta,
    Suffrage,
)


def cfg(node_id: str, **kw: object) -> RaftConfig:
    base: dict = dict(
        heartbeat_ticks=1,
        election_ticks=10,
        lease_ticks=5,
        max_inflight=4,
        max_entries_per_msg=4,
        snapshot_chunk_size=8,
    )
    base.update(kw)
    return RaftConfig(id=node_id, **base)


class Net:
    def __init__(self, n: int, voters: int | None = None, seed: int = 1, **kw: object) -> None:
        self.ids = [f"n{i + 1}" for i in range(n)]
        voters = n if voters is None else voters
        conf = Configuration(tuple(Server(i, f"addr-{i}") for i in self.ids[:voters]))
        self.cores: dict[str, RaftCore] = {}
        self.kw = kw
        for i, nid in enumerate(self.ids):
            core = RaftCore(cfg(nid, **kw), random.Random(seed * 100 + i))
            if i < voters:
                core.bootstrap(conf)
            # As if booted long ago: past the boot-time vote lease (tested separately).
            core._lease_elapsed = core.cfg.election_ticks
            self.cores[nid] = core
        self.queue: list[Message] = []
        self.down: set[str] = set()
        self.cut: set[frozenset[str]] = set()
        self.applied: dict[str, list[Entry]] = {nid: [] for nid in self.ids}
        self.reads: dict[str, list[tuple[int, int]]] = {nid: [] for nid in self.ids}
        self.read_failures: dict[str, list[int]] = {nid: [] for nid in self.ids}
        self.snapshots: dict[str, list[Snapshot]] = {nid: [] for nid in self.ids}
        self.drain()

    def __getitem__(self, nid: str) -> RaftCore:
        return self.cores[nid]

    def drain(self) -> None:
        for nid, core in self.cores.items():
            if nid in self.down:
                continue
            while core.has_ready():
                rd = core.ready()
                self.queue.extend(rd.messages_now)
                self.queue.extend(rd.messages_after)
                if rd.snapshot is not None:
                    self.snapshots[nid].append(rd.snapshot)
                self.applied[nid].extend(rd.committed)
                self.reads[nid].extend(rd.read_states)
                self.read_failures[nid].extend(rd.read_failures)
                if rd.persist_mark is not None:
                    core.on_persisted(*rd.persist_mark)

    def deliver(self, max_rounds: int = 1000, drop=lambda m: False) -> None:
        for _ in range(max_rounds):
            self.drain()
            if not self.queue:
                return
            batch, self.queue = self.queue, []
            for m in batch:
                if m.dst in self.down or m.src in self.down or drop(m):
                    continue
                if frozenset((m.src, m.dst)) in self.cut:
                    continue
                self.cores[m.dst].step(m)
        raise AssertionError("network did not quiesce")

    def tick(self, nid: str, n: int = 1) -> None:
        for _ in range(n):
            self.cores[nid].tick()
        self.drain()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for nid in self.ids:
                if nid not in self.down:
                    self.cores[nid].tick()
            self.deliver()

    def elect(self, nid: str) -> None:
        """Let `nid` time out first and win."""
        core = self.cores[nid]
        for _ in range(40):
            core.tick()
            if core.role is not Role.FOLLOWER:
                break
        self.deliver()
        assert core.role is Role.LEADER, core.role
        self.deliver()

    def isolate(self, nid: str) -> None:
        for other in self.ids:
            if other != nid:
                self.cut.add(frozenset((nid, other)))

    def heal(self) -> None:
        self.cut.clear()

    def propose(self, nid: str, value: bytes) -> int:
        index, _ = self.cores[nid].propose(value)
        self.deliver()
        return index


def normal(entries: list[Entry]) -> list[bytes]:
    return [e.data for e in entries if e.kind is EntryKind.NORMAL]


# ---------------------------------------------------------------------- elections


def test_single_node_elects_itself_and_commits() -> None:
    net = Net(1)
    net.elect("n1")
    assert net["n1"].term == 2
    idx = net.propose("n1", b"x")
    assert net["n1"].commit == idx
    assert normal(net.applied["n1"]) == [b"x"]


def test_sole_voter_campaigns_at_once_but_not_while_following_a_leader() -> None:
    core = RaftCore(cfg("n1"), random.Random(0))
    core.bootstrap(Configuration((Server("n1", "a"),)))
    core.ready()
    core.tick()
    assert core.role is Role.LEADER  # nobody to wait for
    # A sole voter that still follows (a removed leader finishing its last change) waits: that
    # leader may hold a lease on this voter's acknowledgements.
    other = RaftCore(cfg("n2"), random.Random(0))
    other.bootstrap(Configuration((Server("n2", "b"),)))
    other.ready()
    other.step(Message(MsgType.HEARTBEAT, "n1", "n2", 1))
    other.tick()
    assert other.role is Role.FOLLOWER and other.lead == "n1"


def test_election_with_prevote_and_leader_known_everywhere() -> None:
    net = Net(3)
    net.elect("n2")
    for nid in net.ids:
        assert net[nid].term == 2
        assert net[nid].lead == "n2"
    # The no-op of term 2 is committed and applied everywhere (after a heartbeat carries commit).
    net.tick_all(1)
    for nid in net.ids:
        assert net[nid].commit == 2


def test_vote_granted_once_per_term_and_persisted_before_reply() -> None:
    core = RaftCore(cfg("n1", check_quorum=False), random.Random(0))
    core.bootstrap(Configuration((Server("n1", "a"), Server("n2", "b"), Server("n3", "c"))))
    core.ready()
    core.step(Message(MsgType.VOTE, "n2", "n1", 5, index=1, log_term=1))
    rd = core.ready()
    assert rd.hard_state == HardState(5, "n2", 0)
    assert not rd.messages_now  # a vote leaves only after the vote is durable
    assert [(m.type, m.reject) for m in rd.messages_after] == [(MsgType.VOTE_RESP, False)]
    core.step(Message(MsgType.VOTE, "n3", "n1", 5, index=1, log_term=1))
    rd = core.ready()
    assert [(m.type, m.reject) for m in rd.messages_after] == [(MsgType.VOTE_RESP, True)]


def test_freshly_booted_node_ignores_votes_for_one_election_timeout() -> None:
    # A restarted follower may have acknowledged a leader's lease just before it crashed.
    conf = Configuration((Server("n1", "a"), Server("n2", "b"), Server("n3", "c")))
    core = RaftCore(cfg("n1"), random.Random(0))
    core.bootstrap(conf)
    core.ready()
    core.step(Message(MsgType.PRE_VOTE, "n2", "n1", 2, index=1, log_term=1))
    assert not core.ready().messages_after
    for _ in range(core.cfg.election_ticks):
        core.tick()
        core.ready()
        if core.role is not Role.FOLLOWER:
            break
    core.step(Message(MsgType.PRE_VOTE, "n2", "n1", core.term + 1, index=1, log_term=1))
    assert [m.reject for m in core.ready().messages_after] == [False]


def test_vote_survives_restart_no_double_vote() -> None:
    conf = Configuration((Server("n1", "a"), Server("n2", "b"), Server("n3", "c")))
    entries = [Entry(1, 1, EntryKind.CONFIG, conf.encode())]
    state = PersistentState(HardState(5, "n2", 0), None, entries)
    core = RaftCore(cfg("n1", check_quorum=False), random.Random(0), state)
    core.step(Message(MsgType.VOTE, "n3", "n1", 5, index=1, log_term=1))
    rd = core.ready()
    assert [m.reject for m in rd.messages_after] == [True]


def test_election_restriction_rejects_stale_log() -> None:
    net = Net(3, check_quorum=False)
    net.elect("n1")
    net.propose("n1", b"a")
    # n3 missed nothing here, but fabricate a candidate with a shorter log.
    core = net["n2"]
    core.step(Message(MsgType.VOTE, "n3", "n2", 10, index=1, log_term=1))
    rd = core.ready()
    resp = [m for m in rd.messages_after if m.type is MsgType.VOTE_RESP]
    assert resp and resp[0].reject


def test_stale_term_append_gets_new_term_and_stale_leader_steps_down() -> None:
    net = Net(3)
    net.elect("n1")
    net.isolate("n1")
    net.tick_all(30)  # n2/n3 elect a new leader in a higher term
    new_leader = [nid for nid in ("n2", "n3") if net[nid].role is Role.LEADER]
    assert new_leader
    assert net["n1"].role is not Role.LEADER  # CheckQuorum made the isolated leader step down
    net.heal()
    net.tick_all(3)
    assert net["n1"].lead == new_leader[0]
    assert net["n1"].term == net[new_leader[0]].term


def test_lower_term_message_answered_with_current_term() -> None:
    net = Net(3)
    net.elect("n1")
    net["n2"].step(Message(MsgType.APPEND, "n3", "n2", 1, index=0, log_term=0))
    rd = net["n2"].ready()
    resp = [m for m in rd.messages_after if m.dst == "n3"]
    assert resp and resp[0].type is MsgType.APPEND_RESP and resp[0].term == 2


def test_prevote_keeps_partitioned_node_from_inflating_terms() -> None:
    net = Net(3)
    net.elect("n1")
    term = net["n1"].term
    net.isolate("n3")
    net.tick_all(100)
    assert net["n3"].term == term  # pre-votes failed, so it never bumped its term
    assert net["n1"].role is Role.LEADER
    net.heal()
    net.tick_all(3)
    assert net["n1"].role is Role.LEADER and net["n1"].term == term
    assert net["n3"].lead == "n1"


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    net = Net(3)
    net.elect("n1")
    net.down |= {"n2", "n3"}
    for _ in range(net["n1"].cfg.election_ticks * 2 + 1):
        net["n1"].tick()
        net.drain()
        net.queue.clear()
    assert net["n1"].role is Role.FOLLOWER


def test_follower_in_lease_ignores_vote_requests_unless_transfer() -> None:
    net = Net(3)
    net.elect("n1")
    term = net["n2"].term
    net["n2"].step(Message(MsgType.VOTE, "n3", "n2", term + 1, index=99, log_term=99))
    assert net["n2"].term == term and not net["n2"].ready().messages_after
    net["n2"].step(
        Message(MsgType.VOTE, "n3", "n2", term + 1, index=99, log_term=99, transfer=True)
    )
    assert net["n2"].term == term + 1


# ---------------------------------------------------------------------- replication


def test_log_replication_and_batching() -> None:
    net = Net(3)
    net.elect("n1")
    for i in range(10):
        net["n1"].propose(bytes([i]))
    rd_sizes = []

    def watch(m: Message) -> bool:
        if m.type is MsgType.APPEND and m.entries:
            rd_sizes.append(len(m.entries))
        return False

    net.deliver(drop=watch)
    assert max(rd_sizes) == 4  # max_entries_per_msg
    for nid in net.ids:
        assert net[nid].commit == net["n1"].log.last_index
    net.tick_all(1)
    for nid in net.ids:
        assert normal(net.applied[nid]) == [bytes([i]) for i in range(10)]


def test_follower_acknowledges_entries_only_after_persisting_them() -> None:
    net = Net(3)
    net.elect("n1")
    net["n1"].propose(b"x")
    rd = net["n1"].ready()
    append = next(m for m in rd.messages_now if m.type is MsgType.APPEND and m.dst == "n2")
    net["n2"].step(append)
    out = net["n2"].ready()
    assert out.entries and out.entries[-1].data == b"x"
    assert not [m for m in out.messages_now if m.type is MsgType.APPEND_RESP]
    assert [m.index for m in out.messages_after if m.type is MsgType.APPEND_RESP] == [3]


def test_pipelining_keeps_several_appends_in_flight() -> None:
    net = Net(2)
    net.elect("n1")
    for i in range(16):
        net["n1"].propose(bytes([i]))
    rd = net["n1"].ready()
    appends = [m for m in rd.messages_now if m.type is MsgType.APPEND and m.entries]
    assert len(appends) == 4  # max_inflight, each with up to 4 entries, before any answer


def test_conflicting_follower_suffix_is_overwritten_with_fast_backoff() -> None:
    net = Net(3, check_quorum=False)
    net.elect("n1")
    net.isolate("n1")
    for i in range(20):  # uncommitted entries only the old leader has
        net["n1"].propose(b"stale%d" % i)
    net.deliver()
    net.tick_all(40)
    leader = next(nid for nid in ("n2", "n3") if net[nid].role is Role.LEADER)
    net.propose(leader, b"fresh")
    net.heal()
    rejects = []

    def watch(m: Message) -> bool:
        if m.type is MsgType.APPEND_RESP and m.reject and m.dst == leader and m.src == "n1":
            rejects.append(m)
        return False

    for _ in range(5):
        net.tick(leader)
        net.deliver(drop=watch)
    assert net["n1"].log.last_index == net[leader].log.last_index
    assert [e.term for e in net["n1"].log.entries] == [e.term for e in net[leader].log.entries]
    assert b"fresh" in normal(net.applied["n1"])
    assert not any(b"stale" in d for d in normal(net.applied["n1"]))
    assert len(rejects) <= 2  # the term hint skips the 20 stale entries in one step


def test_commit_rule_only_counts_current_term_entries() -> None:
    """Figure 8 of the Raft paper: an old-term entry on a majority is not yet committed."""
    conf = Configuration(tuple(Server(f"n{i}", f"addr-n{i}") for i in (1, 2, 3)))
    base = [Entry(1, 1, EntryKind.CONFIG, conf.encode()), Entry(2, 2, EntryKind.NOOP)]
    logs = {
        "n1": [*base, Entry(2, 3, EntryKind.NORMAL, b"old")],  # term-2 leader's unreplicated entry
        "n2": base,
        "n3": [*base, Entry(3, 3, EntryKind.NORMAL, b"t3")],  # a term-3 leader's entry
    }
    net = Net(3)
    for nid, log in logs.items():
        core = RaftCore(
            cfg(nid, max_entries_per_msg=1),
            random.Random(nid),
            PersistentState(HardState(3, None, 2), None, log),
        )
        core._lease_elapsed = core.cfg.election_ticks
        net.cores[nid] = core
    net.down.add("n3")
    n1 = net["n1"]
    for _ in range(40):
        n1.tick()
        if n1.role is not Role.FOLLOWER:
            break
    # n1 wins term 4 with n2's vote and appends its no-op at 4. Let n2 acknowledge entry 3 (term
    # 2) but not yet entry 4: entry 3 is now on a majority {n1, n2}, yet must not commit, since n3
    # (log ending in term 3) could still be elected and overwrite it.
    net.deliver(drop=lambda m: m.type is MsgType.APPEND_RESP and m.index >= 4)
    assert n1.role is Role.LEADER and n1.term == 4
    assert n1.progress["n2"].match == 3
    assert n1.commit == 2
    net.tick("n1")
    net.deliver()
    assert n1.commit == 4  # committed together with the term-4 no-op


# ---------------------------------------------------------------------- membership


def test_add_voter_one_at_a_time_and_promote() -> None:
    net = Net(4, voters=3)
    net.elect("n1")
    net["n1"].change_config("add_nonvoter", "n4", "addr-n4")
    with pytest.raises(ConfigChangeInProgress):
        net["n1"].change_config("promote", "n4")
    net.deliver()
    net.tick_all(1)
    assert net["n1"].configuration.get("n4").suffrage is Suffrage.NONVOTER
    assert net["n4"].log.last_index == net["n1"].log.last_index  # non-voter caught up
    net["n1"].change_config("promote", "n4")
    net.deliver()
    net.tick_all(1)
    for nid in net.ids:
        assert net[nid].configuration.is_voter("n4")


def test_config_takes_effect_when_appended_and_reverts_on_truncation() -> None:
    net = Net(3, check_quorum=False)
    net.elect("n1")
    net.tick_all(1)
    net.isolate("n1")
    net["n1"].change_config("remove", "n3")
    assert not net["n1"].configuration.get("n3")  # in effect immediately on the leader
    net.tick_all(40)
    leader = next(nid for nid in ("n2", "n3") if net[nid].role is Role.LEADER)
    net.propose(leader, b"x")
    net.heal()
    net.tick_all(5)
    assert net["n1"].configuration.get("n3") is not None  # uncommitted change was undone


def test_removed_leader_steps_down_and_hands_over() -> None:
    net = Net(3)
    net.elect("n1")
    net.tick_all(1)
    net["n1"].change_config("remove", "n1")
    net.deliver()
    net.tick_all(2)
    assert net["n1"].role is Role.FOLLOWER
    net.tick_all(3)
    leaders = [nid for nid in ("n2", "n3") if net[nid].role is Role.LEADER]
    assert len(leaders) == 1  # TimeoutNow made the most up-to-date voter take over at once
    for _ in range(50):
        net.tick("n1")
    assert net["n1"].role is Role.FOLLOWER  # not a voter: it never campaigns


# ---------------------------------------------------------------------- snapshots


def test_snapshot_install_in_chunks_to_a_new_node() -> None:
    net = Net(4, voters=3)
    net.elect("n1")
    for i in range(10):
        net.propose("n1", b"v%d" % i)
    net.tick_all(1)
    leader = net["n1"]
    applied = leader.applied
    conf_index, conf = leader.configuration_at(applied)
    data = msgpack.packb({"state": "x" * 40})
    snap = Snapshot(SnapshotMeta(applied, leader.log.term(applied), conf, conf_index), data)
    leader.compact(snap, trailing=0)
    assert leader.log.first_index == applied + 1
    chunks = []

    def watch(m: Message) -> bool:
        if m.type is MsgType.SNAPSHOT:
            chunks.append(m.offset)
        return False

    leader.change_config("add_voter", "n4", "addr-n4")
    for _ in range(10):
        net.tick("n1")
        net.deliver(drop=watch)
    assert len(chunks) >= len(data) // 8  # chunk size is 8 bytes
    assert [s.data for s in net.snapshots["n4"]] == [data]
    assert net["n4"].log.last_index == leader.log.last_index
    assert net["n4"].commit == leader.commit
    assert net["n4"].configuration.is_voter("n4")


def _snapshot_now(core: RaftCore) -> Snapshot:
    applied = core.applied
    conf_index, conf = core.configuration_at(applied)
    return Snapshot(SnapshotMeta(applied, core.log.term(applied) or 0, conf, conf_index), b"s")


def test_trailing_entries_stay_in_memory_only_while_a_peer_may_need_them() -> None:
    net = Net(3)
    net.elect("n1")
    for i in range(10):
        net.propose("n1", b"v%d" % i)
    net.tick_all(1)
    leader, follower = net["n1"], net["n2"]
    # Every peer has the snapshot's index: the leader keeps none of the trailing entries.
    assert all(net[n].applied == leader.applied for n in ("n2", "n3"))
    first = leader.applied
    leader.compact(_snapshot_now(leader), trailing=4)
    assert leader.log.first_index == first + 1
    # A follower knows nothing of its peers: it keeps its trailing entries.
    follower.compact(_snapshot_now(follower), trailing=4)
    assert follower.log.first_index == follower.applied - 4 + 1
    # One peer is behind: the leader keeps the trailing entries for it.
    net.isolate("n3")
    for i in range(10):
        net.propose("n1", b"w%d" % i)
    net.tick_all(1)
    second = leader.applied
    assert second > first
    leader.compact(_snapshot_now(leader), trailing=4)
    assert leader.log.first_index == second - 4 + 1


def test_a_single_server_releases_entries_from_memory_once_applied_and_durable() -> None:
    net = Net(1)
    net.elect("n1")
    core = net["n1"]
    for i in range(10):
        net.propose("n1", b"v%d" % i)
    net.drain()
    assert core.applied == core.log.last_index == 12
    assert core.log.first_in_memory == core.log.last_index + 1  # nothing held
    assert core.log.entries == []
    # Their terms stay known (consistency checks, snapshots at the applied index).
    assert core.log.term(1) == 1 and core.log.term(12) == core.term
    assert core.log.last_term == core.term and core.log.first_index == 1


def test_a_leader_releases_only_what_every_peer_matched_and_keeps_a_trailing_window() -> None:
    net = Net(3, memory_trailing_entries=3)
    net.elect("n1")
    for i in range(10):
        net.propose("n1", b"v%d" % i)
    net.tick_all(1)
    leader, follower = net["n1"], net["n2"]
    last = leader.log.last_index
    assert leader.log.first_in_memory == last - 3 + 1
    assert follower.log.first_in_memory == follower.applied - 3 + 1
    net.down.add("n3")
    for i in range(10):
        net.propose("n1", b"w%d" % i)
    net.tick_all(1)
    assert leader.log.first_in_memory == last - 3 + 1  # n3 has not matched the new ones


def test_a_follower_needing_released_entries_gets_a_snapshot_the_leader_asks_for() -> None:
    net = Net(4, voters=3, memory_trailing_entries=0)
    net.elect("n1")
    for i in range(10):
        net.propose("n1", b"v%d" % i)
    net.tick_all(1)
    leader = net["n1"]
    assert leader.log.first_in_memory == leader.log.last_index + 1
    assert leader.snapshot is None
    leader.change_config("add_voter", "n4", "addr-n4")
    net.tick_all(3)
    # n4 needs entry 1 on: released, and no snapshot covers it: the leader asks for one.
    wanted = leader.snapshot_wanted
    assert wanted > 0 and net["n4"].log.last_index == 0
    leader.compact(_snapshot_now(leader), trailing=0)
    assert leader.snapshot is not None and leader.snapshot.meta.index >= wanted
    assert leader.snapshot_wanted == 0
    net.tick_all(5)
    assert [s.meta.index for s in net.snapshots["n4"]] == [leader.snapshot.meta.index]
    assert net["n4"].log.last_index == leader.log.last_index
    assert net["n4"].commit == leader.commit


def test_user_restore_replaces_the_log_and_reaches_followers_as_a_snapshot() -> None:
    net = Net(4, voters=3)
    net.elect("n1")
    for i in range(5):
        net.propose("n1", b"v%d" % i)
    net.down.add("n3")  # misses the restore entirely
    net.propose("n1", b"uncommitted")  # n2 has it, not yet acknowledged when the restore begins
    net.drain()
    leader = net["n1"]
    last = leader.log.last_index
    data = b"restored-state" * 5  # several 8-byte chunks
    snap, noop, term = leader.restore(data)
    assert snap.meta.index == last + 1 and snap.meta.term == leader.term
    assert (noop, term) == (last + 2, leader.term)
    assert leader.log.first_index == last + 2  # the old log is gone
    net.deliver()
    # n2 took the snapshot by InstallSnapshot, then the NOOP: committed on a quorum.
    assert [s.data for s in net.snapshots["n2"]] == [data]
    assert bytes(net.snapshots["n2"][0].data) == data
    assert leader.commit == noop and net["n2"].commit == noop
    assert net["n2"].log.last_index == noop
    # n3 comes back with its old log and gets the same snapshot.
    net.down.discard("n3")
    net.tick_all(10)
    assert [bytes(s.data) for s in net.snapshots["n3"]] == [data]
    assert net["n3"].log.last_index == leader.log.last_index
    # The configuration carried over: a server added afterwards gets the restored snapshot.
    leader.change_config("add_voter", "n4", "addr-n4")
    net.tick_all(10)
    assert [bytes(s.data) for s in net.snapshots["n4"]] == [data]
    assert net["n4"].configuration.is_voter("n4") and net["n4"].commit == leader.commit


def test_a_restore_not_known_committed_reloads_without_counting_as_committed() -> None:
    """The leader restores, is cut off before the NOOP after it commits, and restarts from
    what it persisted: it loads the snapshot but does not count it as committed, so it never
    tells the new leader (elected without the restore) that it holds that leader's entries."""
    net = Net(3)
    net.elect("n1")
    for i in range(3):
        net.propose("n1", b"v%d" % i)
    net.deliver()
    old = net["n1"]
    committed = old.commit
    net.isolate("n1")
    snap, noop, _ = old.restore(b"restored-state")
    net.drain()
    assert old.commit == committed < snap.meta.index  # the NOOP never reached a quorum
    # n2 leads a later term without the restore and writes past the snapshot's index.
    for nid in ("n2", "n3"):
        net[nid]._lease_elapsed = net[nid].cfg.election_ticks  # n1 is silent to them
    net.elect("n2")
    for i in range(snap.meta.index - committed + 2):
        net.propose("n2", b"w%d" % i)
    net.deliver()
    assert net["n2"].commit > snap.meta.index
    # n1 restarts from its disk: the snapshot, the NOOP and the durable commit index.
    persisted = PersistentState(
        HardState(old.term, old.vote, old.commit), snap, [old.log.entry(noop)]
    )
    n1 = RaftCore(cfg("n1"), random.Random(9), persisted)
    n1._lease_elapsed = n1.cfg.election_ticks
    assert n1.commit == committed and n1.applied == snap.meta.index
    net.cores["n1"] = n1
    net.heal()
    net.tick_all(20)
    # n1 acknowledged nothing it does not hold: the leader's view of it stays at the old
    # commit (its log matches nothing after), and it applied none of n2's entries.
    assert net["n2"].progress["n1"].match <= committed
    assert n1.commit == committed and n1.log.last_index == noop
    # A snapshot from the leader heals it.
    leader = net["n2"]
    leader.compact(_snapshot_now(leader), trailing=0)
    net.tick_all(20)
    assert n1.commit == leader.commit and n1.log.last_index == leader.log.last_index


class _FlakyBuffer(bytearray):
    """A snapshot buffer whose second write fails once, as on a full disk."""

    writes = 0

    def __setitem__(self, key: slice, value: bytes) -> None:  # type: ignore[override]
        _FlakyBuffer.writes += 1
        if _FlakyBuffer.writes == 2:
            raise OSError(28, "No space left on device")
        super().__setitem__(key, value)


def test_a_snapshot_buffer_that_cannot_be_made_or_written_delays_the_transfer() -> None:
    net = Net(3)
    net.elect("n1")
    net.down.add("n3")
    for i in range(6):
        net.propose("n1", b"v%d" % i)
    leader = net["n1"]
    snap = _snapshot_now(leader)
    leader.compact(Snapshot(snap.meta, b"state-bytes" * 4), trailing=0)  # 6 chunks of 8
    made: list[int] = []

    def factory(size: int) -> bytearray:
        made.append(size)
        if len(made) == 1:
            raise OSError(28, "No space left on device")
        return _FlakyBuffer(size)

    net["n3"].snapshot_buffer = factory
    net.down.discard("n3")
    net.tick_all(30)
    assert len(made) == 2 and _FlakyBuffer.writes == 7  # both failures were retried
    assert [bytes(x.data) for x in net.snapshots["n3"]] == [b"state-bytes" * 4]
    assert net["n3"].log.last_index == leader.log.last_index


def test_user_restore_is_refused_off_the_leader_and_during_a_config_change() -> None:
    net = Net(3)
    net.elect("n1")
    with pytest.raises(NotLeader):
        net["n2"].restore(b"x")
    net["n1"].change_config("add_nonvoter", "n4", "addr-n4")
    before = net["n1"].log.last_index
    with pytest.raises(ConfigChangeInProgress):
        net["n1"].restore(b"x")
    assert net["n1"].log.last_index == before


def test_restart_from_snapshot_and_trailing_log() -> None:
    conf = Configuration((Server("n1", "a"),))
    meta = SnapshotMeta(10, 3, conf, 1)
    entries = [Entry(3, i, EntryKind.NORMAL, b"e%d" % i) for i in range(8, 15)]
    core = RaftCore(
        cfg("n1"),
        random.Random(0),
        PersistentState(HardState(3, "n1", 12), Snapshot(meta, b"s"), entries),
    )
    assert core.log.base_index == 8 and core.log.last_index == 14
    assert core.applied == 10 and core.commit == 12
    rd = core.ready()
    assert [e.index for e in rd.committed] == [11, 12]


# ---------------------------------------------------------------------- reads and leases


def test_read_index_needs_a_heartbeat_quorum() -> None:
    net = Net(3)
    net.elect("n1")
    net["n1"].read_index(7)
    net.drain()
    assert net.reads["n1"] == []  # not before a quorum confirmed leadership
    net.deliver()
    assert net.reads["n1"] == [(7, net["n1"].commit)]


def test_read_index_on_isolated_leader_never_completes() -> None:
    net = Net(3)
    net.elect("n1")
    net.isolate("n1")
    net["n1"].read_index(1)
    net.deliver()
    assert net.reads["n1"] == []
    for _ in range(25):
        net["n1"].tick()
        net.deliver()
    assert net.read_failures["n1"] == [1]  # failed when CheckQuorum deposed the leader


def test_follower_read_index_is_forwarded() -> None:
    net = Net(3)
    net.elect("n1")
    net["n3"].read_index(42)
    net.deliver()
    assert net.reads["n3"] == [(42, net["n1"].commit)]


def test_read_deferred_until_leader_commits_in_its_term() -> None:
    net = Net(3)
    core = net["n1"]
    for _ in range(40):
        core.tick()
        if core.role is not Role.FOLLOWER:
            break
    net.deliver(drop=lambda m: m.type is MsgType.APPEND_RESP)
    assert core.role is Role.LEADER and not core.committed_in_term
    core.read_index(5)
    net.deliver(drop=lambda m: m.type is MsgType.APPEND_RESP)
    assert net.reads["n1"] == []
    net.tick("n1")
    net.deliver()
    assert net.reads["n1"] and net.reads["n1"][0][1] >= core.term_start_index


def test_lease_holds_after_acks_and_expires_without_them() -> None:
    net = Net(3)
    net.elect("n1")
    net.tick_all(1)
    assert net["n1"].has_lease()
    net.down |= {"n2", "n3"}
    for _ in range(net["n1"].cfg.lease_ticks):
        net["n1"].tick()
        net.drain()
        net.queue.clear()
    assert not net["n1"].has_lease()


# ---------------------------------------------------------------------- transfer


def test_leadership_transfer_with_timeout_now() -> None:
    net = Net(3)
    net.elect("n1")
    net.propose("n1", b"x")
    target = net["n1"].transfer_leadership("n3")
    assert target == "n3"
    with pytest.raises(TransferInProgress):
        net["n1"].propose(b"blocked")
    net.deliver()
    assert net["n3"].role is Role.LEADER
    assert net["n1"].role is Role.FOLLOWER and net["n1"].lead == "n3"


def test_transfer_to_lagging_target_waits_for_catch_up() -> None:
    net = Net(3)
    net.elect("n1")
    net.down.add("n3")
    for i in range(5):
        net.propose("n1", bytes([i]))
    net.down.discard("n3")
    net["n1"].transfer_leadership("n3")
    for _ in range(3):
        net.tick("n1")
        net.deliver()
    assert net["n3"].role is Role.LEADER
    assert net["n3"].log.last_index >= 7


def test_not_leader_carries_hint() -> None:
    net = Net(3)
    net.elect("n2")
    with pytest.raises(NotLeader) as info:
        net["n1"].propose(b"x")
    assert info.value.leader_id == "n2" and info.value.leader_address == "addr-n2"


def test_a_delayed_commit_notice_rides_the_next_append_or_waits_for_notify_commit() -> None:
    net = Net(3, commit_notice_delay=0.02)
    net.elect("n1")
    first = net.propose("n1", b"a")
    leader = net["n1"]
    assert leader.commit == first and normal(net.applied["n1"]) == [b"a"]
    # No AppendEntries of its own for the commit: the followers do not know it yet.
    assert all(net[f].commit < first for f in ("n2", "n3"))
    assert leader.commit_notice_pending
    # The next write's AppendEntries carries it.
    second = net.propose("n1", b"b")
    assert all(net[f].commit >= first for f in ("n2", "n3"))
    assert normal(net.applied["n2"]) == [b"a"]
    assert leader.commit_notice_pending  # the second commit again waits
    # With no write after it, the driver's timer tells them.
    leader.notify_commit()
    net.deliver()
    assert not leader.commit_notice_pending
    assert all(net[f].commit == second for f in ("n2", "n3"))
    assert all(normal(net.applied[f]) == [b"a", b"b"] for f in ("n2", "n3"))


def test_commit_notices_go_at_once_by_default() -> None:
    net = Net(3)
    net.elect("n1")
    index = net.propose("n1", b"a")
    assert all(net[f].commit == index for f in ("n2", "n3"))
    assert not net["n1"].commit_notice_pending


def test_a_commit_notice_is_not_answered_when_accepted() -> None:
    net = Net(3)
    net.elect("n1")
    sent: list[Message] = []

    def watch(m: Message) -> bool:
        sent.append(m)
        return False

    index, _ = net["n1"].propose(b"a")
    net.deliver(drop=watch)
    notices = [m for m in sent if m.notice]
    assert {m.dst for m in notices} == {"n2", "n3"} and all(m.commit == index for m in notices)
    assert all(net[f].commit == index for f in ("n2", "n3"))
    # The entry's AppendEntries were answered; the notices were not.
    answers = [m for m in sent if m.type is MsgType.APPEND_RESP]
    assert sorted(m.src for m in answers) == ["n2", "n3"]


def test_a_refused_commit_notice_is_answered() -> None:
    net = Net(3)
    net.elect("n1")
    # n3 misses the entry's AppendEntries; the notice that follows does not match its log.
    net.propose("n1", b"a")
    sent: list[Message] = []

    def watch(m: Message) -> bool:
        sent.append(m)
        return m.dst == "n3" and bool(m.entries)

    net["n1"].propose(b"b")
    net.deliver(drop=watch)
    assert any(m.notice and m.dst == "n3" for m in sent)
    refused = [m for m in sent if m.type is MsgType.APPEND_RESP and m.src == "n3" and m.reject]
    assert refused
    net.tick("n1")  # the heartbeat's answer lets the leader probe again
    net.deliver()
    assert net["n3"].log.last_index == net["n1"].log.last_index
    assert net["n3"].commit == net["n1"].commit


def test_followers_that_answer_every_notice_still_work() -> None:
    """A follower from before notices ignores the flag and answers: the leader takes that as
    the answer to an empty AppendEntries (a rolling restart mixes both)."""
    net = Net(3)
    net.elect("n1")
    old = net["n3"]
    step = old.step

    def old_step(m: Message) -> None:
        if m.notice:
            m.done = False  # what an older server sees: an ordinary empty AppendEntries
        step(m)

    old.step = old_step  # type: ignore[method-assign]
    for i in range(5):
        net.propose("n1", bytes([i]))
    assert old.commit == net["n1"].commit == net["n2"].commit
    assert normal(net.applied["n3"]) == [bytes([i]) for i in range(5)]
