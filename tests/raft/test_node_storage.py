"""RaftNode over the WAL: a damaged snapshot falls back, a failing disk refuses and recovers."""

from __future__ import annotations

import errno
import gc
import os
import threading
import time
from pathlib import Path

import pytest

from consulpy.raft.errors import LeadershipLost, NotLeader, StorageUnavailable
from consulpy.raft.node import RaftNode, _Job
from consulpy.raft.types import Server
from consulpy.raft.wal import WALLogStore
from tests.raft.helpers import (
    KV,
    fast_config,
    leader_of,
    put,
    shutdown_all,
    start_nodes,
    wait_until,
)


async def test_damaged_latest_snapshot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    nodes, sms = await start_nodes(
        1,
        storage=lambda i: str(tmp_path / i),
        snapshot_threshold=40,
        trailing_logs=5,
        snapshot_interval=0.05,
    )
    node = nodes[0]
    try:
        await leader_of(nodes)
        for i in range(130):
            await node.propose(put(f"k{i}", i))
        await wait_until(lambda: node.stats()["last_snapshot_index"] >= 120)
    finally:
        await node.shutdown()
    snaps = sorted((tmp_path / "s1" / "snapshots").glob("*.snap"))
    assert len(snaps) == 2
    raw = bytearray(snaps[-1].read_bytes())
    raw[-3] ^= 0x01
    snaps[-1].write_bytes(bytes(raw))

    sm2 = KV()
    again = RaftNode(fast_config("s1"), sm2, str(tmp_path / "s1"))
    await again.start()
    try:
        await leader_of([again])
        assert sm2.data == sms[0].data  # the older snapshot plus the log replayed after it
        assert (tmp_path / "s1" / "snapshots" / (snaps[-1].name + ".corrupt")).exists()
    finally:
        await again.shutdown()


async def test_an_idle_node_keeps_no_job_of_its_last_snapshot(tmp_path: Path) -> None:
    """A local snapshot's persist job holds the serialised state; once saved, nothing may keep
    it until the next write (the persist loop's variables used to, a whole state's worth of
    memory on a server that stopped writing after a snapshot)."""
    nodes, _ = await start_nodes(1, storage=lambda i: str(tmp_path / i), snapshot_threshold=10**6)
    node = nodes[0]
    try:
        await leader_of(nodes)
        for i in range(20):
            await node.propose(put(f"k{i}", i))
        index = await node.snapshot()
        assert index >= 20
        gc.collect()
        pinned = [o for o in gc.get_objects() if isinstance(o, _Job) and o.snapshot is not None]
        assert pinned == []
    finally:
        await node.shutdown()


class FlakyDisk(WALLogStore):
    """Fails every fdatasync with `fail` (an errno) while it is set."""

    fail = 0

    def _sync(self, fd: int) -> None:
        if FlakyDisk.fail:
            raise OSError(FlakyDisk.fail, os.strerror(FlakyDisk.fail))
        super()._sync(fd)


async def test_failing_fsync_refuses_writes_acknowledges_nothing_and_recovers(
    tmp_path: Path,
) -> None:
    FlakyDisk.fail = 0
    store = FlakyDisk(str(tmp_path / "wal"))
    sm = KV()
    node = RaftNode(fast_config("s1"), sm, None, log_store=store)
    await node.start()
    await node.bootstrap([Server("s1", node.config.address)])
    try:
        await leader_of([node])
        await node.propose(put("before", 1))
        FlakyDisk.fail = errno.EIO
        with pytest.raises(TimeoutError):
            await node.propose(put("during", 1), timeout=1.0)  # never acknowledged
        assert "during" not in sm.data
        with pytest.raises(StorageUnavailable, match="Input/output error"):
            await node.propose(put("refused", 1))
        FlakyDisk.fail = 0
        await wait_until(lambda: "during" in sm.data, what="the queued write to persist")
        assert (await node.propose(put("after", 2)))[1] == 2
    finally:
        await node.shutdown()
    reopened = WALLogStore(str(tmp_path / "wal"))
    got = reopened.load()
    reopened.close()
    keys = [e.data for e in got.entries]
    assert put("during", 1) in keys and put("refused", 1) not in keys and put("after", 2) in keys


class OwnFlakyDisk(WALLogStore):
    """Fails its fdatasyncs while its own `fail` is set."""

    fail = 0

    def _sync(self, fd: int) -> None:
        if self.fail:
            raise OSError(self.fail, os.strerror(self.fail))
        super()._sync(fd)


async def test_a_leader_whose_disk_fails_hands_over_and_catches_up_later(tmp_path: Path) -> None:
    stores = [OwnFlakyDisk(str(tmp_path / f"s{i}")) for i in range(1, 4)]
    sms = [KV() for _ in stores]
    nodes = [
        RaftNode(fast_config(f"s{i}"), sm, None, log_store=store)
        for i, (sm, store) in enumerate(zip(sms, stores, strict=True), start=1)
    ]
    for nd in nodes:
        await nd.start()
    servers = [Server(nd.id, nd.config.address) for nd in nodes]
    for nd in nodes:
        await nd.bootstrap(servers)
    try:
        sick = await leader_of(nodes)
        sick_store = stores[nodes.index(sick)]
        await sick.propose(put("before", 1))
        sick_store.fail = errno.ENOSPC
        try:
            await sick.propose(put("stuck", 1), timeout=1.0)
            stuck_acked = True  # both followers hold it: a quorum without the leader's disk
        except (TimeoutError, NotLeader, LeadershipLost):
            stuck_acked = False  # outcome unknown (the handover may have come first)
        others = [nd for nd in nodes if nd is not sick]
        new = await leader_of(others, timeout=15.0)
        if stuck_acked:  # acknowledged: the new leader has it
            await wait_until(
                lambda: sms[nodes.index(new)].data.get("stuck") == 1, what="the acked write"
            )
        assert not sick.is_leader
        assert (await new.propose(put("while-sick", 2)))[1] == 2
        sick_sm = sms[nodes.index(sick)]
        assert "while-sick" not in sick_sm.data  # it could not persist it: not applied there
        sick_store.fail = 0
        await wait_until(
            lambda: sick_sm.data.get("while-sick") == 2, what="the sick one to catch up"
        )
    finally:
        await shutdown_all(nodes)


async def test_writes_return_to_the_loop_once_the_disk_is_quick_however_late_the_loop_is(
    tmp_path: Path,
) -> None:
    """The choice between writing on the loop and on the storage thread follows the store's
    own save time: a loop slow to pick up the thread's result (a loaded machine) must not
    keep every later write on the thread."""
    nodes, _ = await start_nodes(1, storage=lambda i: str(tmp_path / i), inline_write_max=0.05)
    node = nodes[0]
    try:
        await leader_of(nodes)
        handed: list[int] = []
        original = node._written_in_thread

        def late(jobs, start, f) -> None:  # type: ignore[no-untyped-def]
            handed.append(1)
            time.sleep(0.06)  # the loop reaches the result 60 ms after the save (> 50 ms)
            original(jobs, start, f)

        node._written_in_thread = late  # type: ignore[method-assign]
        node._write_cost = 0.1  # a slow spell just ended: writes go to the thread
        for i in range(10):
            await node.propose(put(f"k{i}", i))
        assert 0 < len(handed) < 10
        before = len(handed)
        for i in range(5):
            await node.propose(put(f"j{i}", i))
        assert len(handed) == before  # in place again
    finally:
        await shutdown_all(nodes)


async def test_a_leader_of_three_commits_while_its_own_disk_is_stalled(tmp_path: Path) -> None:
    """Its followers make the quorum: the leader's own write runs off the loop, so their
    acknowledgements are read (and the write committed, applied, answered) meanwhile."""
    nodes, sms = await start_nodes(3, storage=lambda i: str(tmp_path / i))
    gate = threading.Event()
    release = threading.Timer(20.0, gate.set)  # never leave the storage thread blocked
    try:
        leader = await leader_of(nodes)
        await leader.propose(put("warm", 0))
        store = leader._log_store
        assert store is not None
        save = store.save

        def stalled(batches):  # type: ignore[no-untyped-def]
            gate.wait()
            save(batches)

        store.save = stalled  # type: ignore[method-assign]
        release.start()
        _, value = await leader.propose(put("k", 1))
        assert value == 1 and not gate.is_set()
        assert sms[nodes.index(leader)].data["k"] == 1
    finally:
        gate.set()
        release.cancel()
        await shutdown_all(nodes)
