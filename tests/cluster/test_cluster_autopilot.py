"""Autopilot's configuration drives autopilot in a real 3-server cluster: with
CleanupDeadServers off (set through `consulpy operator autopilot set-config`) a killed server
stays a Raft peer; turned back on, autopilot removes it. The configuration is replicated:
every server answers the same one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.agentproc import consulpy
from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


def _peer_ids(node) -> set[str]:  # type: ignore[no-untyped-def]
    config = node.json("GET", "/v1/operator/raft/configuration?stale")
    return {s["ID"] for s in config["Servers"]}


def test_cleanup_dead_servers_off_keeps_a_failed_server(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        a = f"-http-addr={leader.http_addr}"
        out = consulpy("operator", "autopilot", "get-config", a)
        assert "CleanupDeadServers = true" in out.stdout, out.stderr
        out = consulpy(
            "operator",
            "autopilot",
            "set-config",
            a,
            "-cleanup-dead-servers=false",
            "-server-stabilization-time=1s",
        )
        assert out.stdout.strip() == "Configuration updated!", out.stderr
        for node in cluster.servers:  # replicated: every server's own store has it
            eventually(
                lambda n=node: (
                    n.json("GET", "/v1/operator/autopilot/configuration?stale")[
                        "CleanupDeadServers"
                    ]
                    is False
                ),
                what=f"configuration replicated to {node.name}",
            )
        out = consulpy("operator", "autopilot", "get-config", a)
        assert "CleanupDeadServers = false" in out.stdout
        assert "ServerStabilizationTime = 1s" in out.stdout
        assert "MaxTrailingLogs = 250" in out.stdout  # set-config keeps what it was not given
        out = consulpy("operator", "autopilot", "state", a)
        assert "Healthy:                      true" in out.stdout, out.stdout
        assert out.stdout.count("Status:          ") == 3

        victim = next(n for n in cluster.servers if n is not leader)
        victim_id = next(
            s["ID"]
            for s in leader.json("GET", "/v1/operator/raft/configuration")["Servers"]
            if s["Node"] == victim.name
        )
        cluster.kill(victim)
        # Autopilot sees the failure, waits ServerStabilizationTime, and keeps the server.
        eventually(
            lambda: "keeping a failed server: CleanupDeadServers is off" in leader.proc.output(),  # type: ignore[union-attr]
            timeout=60,
            what="autopilot deciding to keep the failed server",
        )
        assert victim_id in _peer_ids(leader)
        state = leader.json("GET", "/v1/operator/autopilot/state")
        assert state["Servers"][victim_id]["NodeStatus"] == "failed"
        assert state["Servers"][victim_id]["Healthy"] is False

        out = consulpy("operator", "autopilot", "set-config", a, "-cleanup-dead-servers=true")
        assert out.stdout.strip() == "Configuration updated!", out.stderr
        eventually(
            lambda: victim_id not in _peer_ids(leader),
            timeout=60,
            what="autopilot removing the failed server once cleanup is on",
        )
        assert "autopilot: removed a failed server" in leader.proc.output()  # type: ignore[union-attr]
        out = consulpy("operator", "raft", "list-peers", a)
        assert len(out.stdout.splitlines()) == 3 and victim.name not in out.stdout
    finally:
        cluster.stop_all()
