"""RaftNode clusters over real TCP on 127.0.0.1 in one event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

import msgpack
import pytest

from consulpy.raft.errors import LeadershipLost, NotLeader, RaftError, ShutdownError
from consulpy.raft.node import RaftNode
from consulpy.raft.snapshot_store import SnapshotFile
from consulpy.raft.types import Server
from tests.raft.helpers import (
    KV,
    fast_config,
    leader_of,
    propose_anywhere,
    put,
    shutdown_all,
    start_nodes,
    wait_until,
)


async def test_three_nodes_replicate_read_and_report() -> None:
    nodes, sms = await start_nodes(3)
    try:
        leader = await leader_of(nodes)
        changes: list[tuple[bool, str | None]] = []
        leader.on_leader_change(lambda is_leader, lid, _addr: changes.append((is_leader, lid)))
        results = await asyncio.gather(*(leader.propose(put(f"k{i}", i)) for i in range(200)))
        assert [r[1] for r in results] == list(range(200))
        indexes = [r[0] for r in results]
        assert len(set(indexes)) == 200
        last = max(indexes)
        await wait_until(lambda: all(nd.stats()["applied_index"] >= last for nd in nodes))
        assert all(sm.data == sms[0].data for sm in sms)

        follower = next(nd for nd in nodes if nd is not leader)
        with pytest.raises(NotLeader) as info:
            await follower.propose(put("x", 1))
        assert info.value.leader_id == leader.id
        assert info.value.leader_address == leader.config.address
        # Linearizable reads on the leader and, forwarded, on a follower.
        assert await leader.read_index() >= last
        assert await follower.read_index() >= last
        assert follower.stats()["applied_index"] >= last
        await wait_until(leader.has_lease, what="leader lease")
        assert not follower.has_lease()

        st = follower.stats()
        for key in (
            "id",
            "state",
            "term",
            "leader_id",
            "leader_address",
            "commit_index",
            "applied_index",
            "last_log_index",
            "last_log_term",
            "last_contact",
            "configuration",
            "configuration_index",
            "last_snapshot_index",
            "num_peers",
        ):
            assert key in st
        assert st["state"] == "follower" and st["num_peers"] == 2
        assert st["last_contact"] is not None and st["last_contact"] < 5
        assert leader.stats()["last_contact"] == 0.0
        peers = leader.peer_stats()
        assert set(peers) == {nd.id for nd in nodes if nd is not leader}
        assert all(p["match_index"] >= last for p in peers.values())
        assert {s["suffrage"] for s in leader.configuration()} == {"voter"}
        assert leader.leader() == (leader.id, leader.config.address)
    finally:
        await shutdown_all(nodes)


async def test_five_nodes_leader_kill_and_recovery(tmp_path: Path) -> None:
    nodes, sms = await start_nodes(5, storage=lambda i: str(tmp_path / i))
    sm_of = {nd.id: sm for nd, sm in zip(nodes, sms, strict=True)}
    try:
        for i in range(50):
            await propose_anywhere(nodes, put(f"a{i}", i))
        old = await leader_of(nodes)
        old_id, old_dir, old_addr = old.id, old.storage_dir, old.config.address
        await old.shutdown()
        rest = [nd for nd in nodes if nd is not old]
        new = await leader_of(rest)
        assert new.id != old_id
        for i in range(50):
            await propose_anywhere(rest, put(f"b{i}", i))
        # Restart the old leader from its SQLite store on the same address: it rejoins as a
        # follower and catches up.
        sm = KV()
        again = RaftNode(fast_config(old_id), sm, old_dir)
        again.config.address = old_addr
        await again.start()
        assert not await again.bootstrap([])  # has state: bootstrap refuses
        nodes = [*rest, again]
        target = (await propose_anywhere(nodes, put("final", 1)))[0]
        await wait_until(lambda: again.stats()["applied_index"] >= target)
        leader = await leader_of(nodes)
        await wait_until(lambda: leader.stats()["applied_index"] >= target)
        assert sm.data == sm_of[leader.id].data
        assert sm.data["b49"] == 49 and sm.data["a0"] == 0
    finally:
        await shutdown_all(nodes)


async def test_membership_change_under_load() -> None:
    nodes, sms = await start_nodes(3)
    extra_sm = KV()
    extra = RaftNode(fast_config("s4"), extra_sm, None)
    await extra.start()
    stop = asyncio.Event()
    acked: dict[str, int] = {}

    async def writer(w: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"w{w}-{n}"
            try:
                await propose_anywhere([*nodes, extra], put(key, n), timeout=10)
                acked[key] = n
            except (LeadershipLost, NotLeader, TimeoutError, ShutdownError):
                pass
            n += 1

    tasks = [asyncio.create_task(writer(w)) for w in range(8)]
    try:
        leader = await leader_of(nodes)
        await wait_until(lambda: len(acked) > 50)
        await leader.add_nonvoter("s4", extra.config.address)
        await wait_until(
            lambda: extra.stats()["applied_index"] >= leader.stats()["commit_index"] - 10,
            what="non-voter catch-up",
        )
        await leader.promote("s4")
        assert extra.stats()["configuration_index"] > 0
        victim = next(nd for nd in nodes if nd is not leader)
        await leader.remove_server(victim.id)
        await wait_until(lambda: len(acked) > 150)
        stop.set()
        await asyncio.gather(*tasks)
        members = [nd for nd in [*nodes, extra] if nd is not victim]
        conf = {s["id"]: s["suffrage"] for s in leader.configuration()}
        assert conf == {nd.id: "voter" for nd in members}
        last = leader.stats()["commit_index"]
        await wait_until(lambda: all(nd.stats()["applied_index"] >= last for nd in members))
        for nd, sm in [(nd, sms[nodes.index(nd)] if nd in nodes else extra_sm) for nd in members]:
            for key, value in acked.items():
                assert sm.data.get(key) == value, (nd.id, key)
        await victim.shutdown()
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await shutdown_all([*nodes, extra])


async def test_removing_the_leader_elects_another() -> None:
    nodes, _ = await start_nodes(3)
    try:
        leader = await leader_of(nodes)
        await propose_anywhere(nodes, put("a", 1))
        try:
            await leader.remove_server(leader.id)
        except LeadershipLost:
            pass  # it stepped down as the change committed; the change itself is durable
        rest = [nd for nd in nodes if nd is not leader]
        new = await leader_of(rest)
        assert leader.id not in {s["id"] for s in new.configuration()}
        await propose_anywhere(rest, put("b", 2))
    finally:
        await shutdown_all(nodes)


async def test_snapshot_install_to_wiped_follower(tmp_path: Path) -> None:
    nodes, sms = await start_nodes(
        3,
        storage=lambda i: str(tmp_path / i),
        snapshot_threshold=100,
        trailing_logs=20,
        snapshot_interval=0.05,
        snapshot_chunk_size=4096,
    )
    try:
        big = "x" * 200
        # propose_anywhere: on a loaded machine an election may happen mid-burst.
        await asyncio.gather(
            *(propose_anywhere(nodes, put(f"k{i}", big + str(i))) for i in range(400))
        )
        leader = await leader_of(nodes)
        leader_sm = sms[nodes.index(leader)]
        await wait_until(
            lambda: leader.stats()["last_snapshot_index"] >= 300, what="leader snapshot"
        )
        # The snapshot kept for lagging followers is read from its file, not held in memory.
        assert leader.core is not None and isinstance(leader.core.snapshot.data, SnapshotFile)
        victim = next(nd for nd in nodes if nd is not leader)
        vid, vdir, vaddr = victim.id, victim.storage_dir, victim.config.address
        await victim.shutdown()
        shutil.rmtree(vdir)
        rest = [nd for nd in nodes if nd is not victim]
        await asyncio.gather(*(propose_anywhere(rest, put(f"m{i}", i)) for i in range(300)))
        leader = await leader_of(rest)
        leader_sm = sms[nodes.index(leader)]
        await wait_until(lambda: leader.stats()["last_snapshot_index"] >= 500)
        sm = KV()
        fresh = RaftNode(fast_config(vid), sm, vdir)
        fresh.config.address = vaddr
        await fresh.start()
        nodes = [nd for nd in nodes if nd is not victim] + [fresh]
        last = leader.stats()["commit_index"]
        await wait_until(lambda: fresh.stats()["applied_index"] >= last, what="wiped catch-up")
        assert fresh.stats()["last_snapshot_index"] >= 500  # it got a snapshot, not the log
        assert sm.data == leader_sm.data
        assert sm.data["k0"] == big + "0" and sm.data["m299"] == 299
        # The installed snapshot reaches disk asynchronously (restore happens first, in memory).
        snap_dir = os.path.join(vdir, "snapshots")
        await wait_until(lambda: any(f.endswith(".snap") for f in os.listdir(snap_dir)))
        await wait_until(
            lambda: isinstance(fresh.core.snapshot.data, SnapshotFile),  # type: ignore[union-attr]
            what="installed snapshot read from its file once saved",
        )
    finally:
        await shutdown_all(nodes)


async def test_leadership_transfer_over_tcp() -> None:
    nodes, _ = await start_nodes(3)
    try:
        leader = await leader_of(nodes)
        await leader.propose(put("a", 1))
        target = next(nd for nd in nodes if nd is not leader)

        async def became_leader() -> tuple[bool, str | None, str | None]:
            while True:  # candidate (no leader known) first, then leader
                change = await target.wait_leader_change(timeout=10)
                if change[0]:
                    return change

        watch = asyncio.ensure_future(became_leader())
        got = await leader.transfer_leadership(target.id)
        assert await watch == (True, target.id, target.config.address)
        assert got == target.id
        await wait_until(lambda: target.is_leader, what="target leads")
        assert not leader.is_leader
        await target.propose(put("b", 2))
    finally:
        await shutdown_all(nodes)


async def test_single_node_with_sqlite_restarts_with_its_data(tmp_path: Path) -> None:
    nodes, sm = await start_nodes(
        1,
        storage=lambda i: str(tmp_path / i),
        snapshot_threshold=50,
        trailing_logs=10,
        snapshot_interval=0.05,
    )
    node = nodes[0]
    try:
        await leader_of(nodes)
        for i in range(120):
            await node.propose(put(f"k{i}", i))
        await wait_until(lambda: node.stats()["last_snapshot_index"] >= 100)
    finally:
        await node.shutdown()
    with pytest.raises(ShutdownError):
        await node.propose(put("late", 1))
    sm2 = KV()
    again = RaftNode(fast_config("s1"), sm2, str(tmp_path / "s1"))
    await again.start()
    try:
        await leader_of([again])
        assert sm2.data == sm[0].data
        assert (await again.propose(put("after", 1)))[1] == 1
    finally:
        await again.shutdown()


async def test_state_machine_errors_reach_the_proposer() -> None:
    class Picky(KV):
        def apply(self, index: int, data: bytes) -> object:
            super().apply(index, data)
            if self.data.get("bad"):
                raise ValueError("rejected by the application")
            return "ok"

    node = RaftNode(fast_config("s1"), Picky(), None)
    await node.start()
    try:
        await node.bootstrap([Server("s1", node.config.address)])
        await leader_of([node])
        assert (await node.propose(put("good", 1)))[1] == "ok"
        with pytest.raises(ValueError):
            await node.propose(put("bad", 1))
    finally:
        await node.shutdown()


async def test_api_refuses_when_not_started() -> None:
    node = RaftNode(fast_config("s1"), KV(), None)
    with pytest.raises(RaftError):
        await node.propose(b"x")


async def test_node_is_known_by_its_advertised_address() -> None:
    config = fast_config("s1")
    config.advertise = "127.0.0.9:0"
    node = RaftNode(config, KV(), None)
    await node.start()
    try:
        bound = node.transport.bound_address  # type: ignore[union-attr]
        port = bound.rsplit(":", 1)[1]
        assert node.config.address == f"127.0.0.9:{port}"
        assert node.stats()["address"] == f"127.0.0.9:{port}"
    finally:
        await node.shutdown()


async def test_user_restore_over_tcp_survives_a_restart(tmp_path: Path) -> None:
    nodes, sms = await start_nodes(3, storage=lambda i: str(tmp_path / i), snapshot_chunk_size=4096)
    try:
        for i in range(20):
            await propose_anywhere(nodes, put(f"old{i}", i))
        leader = await leader_of(nodes)
        lsm = sms[nodes.index(leader)]
        new = {f"new{i}": "y" * 100 for i in range(200)}  # about 5 chunks of 4 KiB
        data = msgpack.packb(new)
        before = leader.stats()["last_log_index"]
        # The state as a file read on demand, as the server's restore hands it over.
        with open(tmp_path / "state", "w+b") as f:
            f.write(data)
            f.flush()
            state = SnapshotFile.from_fd(f.fileno(), 0, len(data))
        index = await leader.restore(state, lambda: setattr(lsm, "data", dict(new)))
        del state
        assert index == before + 1
        assert lsm.data == new  # installed on the leader; never passed to KV.restore there
        await wait_until(lambda: all(sm.data == new for sm in sms), what="followers restored")
        # Followers received it into a file-backed buffer and loaded it from there.
        assert all(getattr(sm, "from_file", 0) == 1 for sm in sms if sm is not lsm)
        await propose_anywhere(nodes, put("after", 1))
        await wait_until(lambda: all(sm.data.get("after") == 1 for sm in sms))
        # Restarted from disk, every node starts from the restored snapshot.
        ids = [(nd.id, nd.storage_dir, nd.config.address) for nd in nodes]
        await shutdown_all(nodes)
        nodes, sms = [], []
        for nid, sdir, addr in ids:
            sm = KV()
            node = RaftNode(fast_config(nid), sm, sdir)
            node.config.address = addr
            await node.start()
            nodes.append(node)
            sms.append(sm)
        for sm in sms:
            assert sm.data == new or sm.data == {**new, "after": 1}
            assert getattr(sm, "from_file", 0) == 1  # loaded from the snapshot's file
        await wait_until(lambda: all(sm.data == {**new, "after": 1} for sm in sms))
        # Refused where it must be, changing nothing.
        leader = await leader_of(nodes)
        follower = next(nd for nd in nodes if nd is not leader)
        with pytest.raises(NotLeader):
            await follower.restore(data, lambda: None)
    finally:
        await shutdown_all(nodes)


async def test_a_follower_loading_a_snapshot_keeps_acknowledging_entries(tmp_path: Path) -> None:
    """Two voters: every commit needs the follower. While it builds a received snapshot in a
    worker thread (held by the test), it still persists and acknowledges new entries, which
    it applies in order once the snapshot is in."""
    nodes, sms = await start_nodes(2, storage=lambda i: str(tmp_path / i), snapshot_chunk_size=4096)
    try:
        await propose_anywhere(nodes, put("before", 0))  # the leader committed in its term
        leader = await leader_of(nodes)
        follower = next(nd for nd in nodes if nd is not leader)
        fsm = sms[nodes.index(follower)]
        await wait_until(lambda: fsm.data == {"before": 0})
        gate = threading.Event()
        fsm.gate = gate  # type: ignore[attr-defined]
        new = {f"new{i}": "y" * 100 for i in range(100)}
        lsm = sms[nodes.index(leader)]
        await leader.restore(msgpack.packb(new), lambda: setattr(lsm, "data", dict(new)))
        assert not gate.is_set() and fsm.data == {"before": 0}  # still loading
        assert await leader.propose(put("after", 1)) is not None  # acknowledged meanwhile
        assert fsm.data == {"before": 0}
        assert follower.stats()["applied_index"] < leader.stats()["applied_index"]
        gate.set()
        await wait_until(lambda: fsm.data == {**new, "after": 1}, what="applied in order")
    finally:
        await shutdown_all(nodes)


async def test_a_server_added_after_its_entries_were_released_gets_a_snapshot_taken_for_it(
    tmp_path: Path,
) -> None:
    """A single server keeps no applied entry in memory and has no snapshot yet: the server
    added next needs entry 1 on, so the leader has a snapshot taken and sends it."""
    nodes, sms = await start_nodes(1, storage=lambda nid: str(tmp_path / nid))
    extra_sm = KV()
    extra = RaftNode(fast_config("s2"), extra_sm, str(tmp_path / "s2"))
    await extra.start()
    try:
        leader = await leader_of(nodes)
        for i in range(30):
            await leader.propose(put(f"k{i}", i))
        assert leader.core is not None and leader.core.log.entries == []
        assert leader.stats()["last_snapshot_index"] == 0
        await leader.add_voter("s2", extra.config.address)
        last = leader.stats()["commit_index"]
        await wait_until(lambda: extra.stats()["applied_index"] >= last, what="s2 caught up")
        assert extra_sm.data == sms[0].data
        assert leader.stats()["last_snapshot_index"] > 0
    finally:
        await shutdown_all([*nodes, extra])
