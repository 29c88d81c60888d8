"""Operator tools and user snapshots against a real cluster, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.agentproc import consulpy
from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


def test_list_peers_transfer_leader_info(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        a = f"-http-addr={cluster.servers[0].http_addr}"
        out = consulpy("operator", "raft", "list-peers", a)
        lines = out.stdout.splitlines()
        assert lines[0].split() == ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
        assert sum("leader" in line for line in lines) == 1 and len(lines) == 4
        target = next(n for n in cluster.servers if n is not leader)
        target_id = next(
            s["ID"]
            for s in target.json("GET", "/v1/operator/raft/configuration")["Servers"]
            if s["Node"] == target.name
        )
        out = consulpy("operator", "raft", "transfer-leader", a, f"-id={target_id}")
        assert out.stdout.strip() == "Success", out.stderr
        assert cluster.wait_leader() is target
        health = target.json("GET", "/v1/operator/autopilot/health")
        assert health["Healthy"] is True and health["FailureTolerance"] == 1
        out = consulpy("info", a)
        assert "raft:" in out.stdout and "\tnum_peers = 2" in out.stdout
        status, _, raw = target.request("DELETE", "/v1/operator/raft/peer")
        assert status == 400 and raw.startswith(b"Must specify either ?id")
        status, _, raw = target.request("DELETE", "/v1/operator/raft/peer?id=nope")
        assert status == 500 and b"was not found in the Raft configuration" in raw
    finally:
        cluster.stop_all()


def test_snapshot_save_wipe_restore(tmp_path: Path) -> None:
    first = Cluster(tmp_path / "a", servers=3)
    snap = tmp_path / "backup.snap"
    try:
        first.start_all()
        s0 = first.servers[0]
        for i in range(25):
            assert s0.json("PUT", f"/v1/kv/app/{i}", f"v{i}".encode()) is True
        sid = s0.json("PUT", "/v1/session/create", {"Name": "keeper"})["ID"]
        assert s0.json("PUT", f"/v1/kv/app/lock?acquire={sid}", b"me") is True
        kv_before = s0.json("GET", "/v1/kv/app/?recurse")
        _, headers, _ = s0.request("GET", "/v1/kv/app/?recurse")
        index_before = headers["X-Consul-Index"]
        out = consulpy("snapshot", "save", f"-http-addr={s0.http_addr}", str(snap))
        assert out.stdout.startswith("Saved and verified snapshot to index"), out.stderr
        out = consulpy("snapshot", "inspect", str(snap))
        assert "Index" in out.stdout and "Term" in out.stdout
        (term,) = [line.split()[-1] for line in out.stdout.splitlines() if line.startswith("Term")]
        assert int(term) > 0, out.stdout
    finally:
        first.stop_all()
    # a brand-new cluster: nothing in it until the restore
    second = Cluster(tmp_path / "b", servers=3)
    try:
        second.start_all()
        s1 = second.servers[1]
        assert s1.request("GET", "/v1/kv/app/?recurse")[0] == 404
        out = consulpy("snapshot", "restore", f"-http-addr={s1.http_addr}", str(snap))
        assert out.stdout.strip() == "Restored snapshot", out.stderr
        for node in second.servers:
            eventually(
                lambda n=node: n.json("GET", "/v1/kv/app/?recurse&stale") == kv_before,
                what=f"restored KV on {node.name}",
            )
        _, headers, _ = s1.request("GET", "/v1/kv/app/?recurse")
        assert headers["X-Consul-Index"] == index_before
        [session] = s1.json("GET", f"/v1/session/info/{sid}")
        assert session["Name"] == "keeper"
        assert json.loads(s1.request("GET", "/v1/kv/app/lock")[2])[0]["Session"] == sid
    finally:
        second.stop_all()
