"""Failures of a real cluster: leader kill -9 under load, full restart, membership changes,
a client agent's death seen through gossip."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow


class Writer(threading.Thread):
    """Writes distinct keys through the given nodes and remembers which ones were acked."""

    def __init__(self, nodes: list[Node], prefix: str) -> None:
        super().__init__(daemon=True)
        self.nodes = nodes
        self.prefix = prefix
        self.acked: list[str] = []
        self.failed = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            node = self.nodes[i % len(self.nodes)]
            key = f"{self.prefix}/{i:06d}"
            i += 1
            try:
                status, _, raw = node.request("PUT", f"/v1/kv/{key}", key.encode(), timeout=15)
            except OSError:
                self.failed += 1
                continue
            if status == 200 and raw.strip() == b"true":
                self.acked.append(key)
            else:
                self.failed += 1

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(60)


def assert_all_present(node: Node, keys: list[str], prefix: str) -> None:
    def present() -> bool:
        status, _, raw = node.request("GET", f"/v1/kv/{prefix}/?keys&consistent")
        return status == 200 and set(keys) <= set(json.loads(raw))

    eventually(present, timeout=30, what=f"every acknowledged key on {node.name}")


def test_leader_kill_under_load_loses_nothing(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        writer = Writer([n for n in cluster.servers], "load")
        writer.start()
        eventually(lambda: len(writer.acked) >= 50, what="writes flowing")
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader = cluster.wait_leader(timeout=30)
        assert new_leader is not leader
        acked_before = len(writer.acked)
        eventually(lambda: len(writer.acked) >= acked_before + 50, what="writes after failover")
        failover = time.monotonic() - killed_at
        writer.stop()
        for node in cluster.servers:
            if node.alive:
                assert_all_present(node, writer.acked, "load")
        # the old leader comes back with its log and catches up
        cluster.start(leader)
        assert_all_present(leader, writer.acked, "load")
        print(
            f"failover took {failover:.2f}s; {len(writer.acked)} acked, "
            f"{writer.failed} failed during the election"
        )
    finally:
        cluster.stop_all()


def test_full_restart_keeps_everything(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    try:
        cluster.start_all()
        s0 = cluster.servers[0]
        for i in range(30):
            assert s0.json("PUT", f"/v1/kv/keep/{i}", str(i).encode()) is True
        sid = s0.json("PUT", "/v1/session/create", {"Name": "kept"})["ID"]
        before = s0.json("GET", "/v1/kv/keep/?recurse")
        for node in cluster.servers:
            cluster.stop(node)
        for node in cluster.servers:
            cluster.start(node)
        cluster.wait_leader()
        after = cluster.servers[2].json("GET", "/v1/kv/keep/?recurse&consistent")
        assert after == before
        assert cluster.servers[1].json("GET", f"/v1/session/info/{sid}")[0]["Name"] == "kept"
    finally:
        cluster.stop_all()


def test_add_a_server_and_remove_one_under_load(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    try:
        cluster.start_all()
        writer = Writer(cluster.servers[:2], "churn")
        writer.start()
        s3 = cluster.add_server("s3")

        def four_voters() -> bool:
            config = cluster.servers[0].json("GET", "/v1/operator/raft/configuration")
            return sum(1 for s in config["Servers"] if s["Voter"]) == 4

        eventually(four_voters, timeout=60, what="the new server promoted to voter")
        leader = cluster.wait_leader()
        victim = next(n for n in cluster.servers[:3] if n is not leader)
        status, _, raw = leader.request(
            "DELETE", f"/v1/operator/raft/peer?address={victim.rpc_addr}"
        )
        assert status == 200, raw
        cluster.stop(victim)
        peers = eventually(
            lambda: (
                len(leader.json("GET", "/v1/status/peers")) == 3
                and leader.json("GET", "/v1/status/peers")
            ),
            what="3 peers",
        )
        assert victim.rpc_addr not in peers and s3.rpc_addr in peers
        writer.stop()
        assert len(writer.acked) > 0
        assert_all_present(s3, writer.acked, "churn")
    finally:
        cluster.stop_all()


def test_killed_client_agent_turns_critical_and_loses_its_locks(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=1, clients=2)
    try:
        cluster.start_all()
        server, victim, other = cluster.servers[0], cluster.clients[0], cluster.clients[1]
        victim.request(
            "PUT",
            "/v1/agent/service/register",
            json.dumps(
                {"Name": "api", "Port": 9, "Check": {"TTL": "60s", "Status": "passing"}}
            ).encode(),
        )
        eventually(
            lambda: len(server.json("GET", "/v1/health/service/api?passing")) == 1,
            what="api passing",
        )
        sid = victim.json("PUT", "/v1/session/create", {"LockDelay": "0s"})["ID"]
        assert victim.json("PUT", f"/v1/kv/lock?acquire={sid}", b"x") is True
        killed_at = time.monotonic()
        cluster.kill(victim)

        def critical() -> bool:
            checks = other.json("GET", f"/v1/health/node/{victim.name}")
            return any(c["CheckID"] == "serfHealth" and c["Status"] == "critical" for c in checks)

        eventually(critical, timeout=60, what="serfHealth critical")
        detected = time.monotonic() - killed_at
        assert other.json("GET", "/v1/health/service/api?passing") == []
        assert other.json("GET", f"/v1/session/info/{sid}") == []
        [entry] = other.json("GET", "/v1/kv/lock")
        assert "Session" not in entry
        print(f"killed client agent detected as critical after {detected:.2f}s")
    finally:
        cluster.stop_all()
