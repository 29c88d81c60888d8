"""The cluster harness survives a port another process took between choosing and binding it."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cluster.harness import Cluster


def test_first_start_retries_with_new_ports_when_one_is_taken(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=1)
    node = cluster.servers[0]
    taken = node.serf
    # Someone else listens on the gossip port the harness picked for the node.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            cluster.start_all()
            assert taken in node.collisions
            assert node.serf != taken
            assert node.alive
            leader = cluster.wait_leader()
            assert leader is node
            members = node.json("GET", "/v1/agent/members")
            assert [m["Port"] for m in members] == [node.serf]
            assert node.http != 0
        finally:
            cluster.stop_all()
