"""discovery_max_stale: with it set, catalog and health reads that name no consistency mode are
answered by any server that heard from the leader within that time, so service discovery keeps
working while the cluster has no leader; other reads (KV, ?leader) still need the leader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


def test_discovery_reads_are_stale_without_a_leader(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=2)
    for node in cluster.servers:
        node.extra.append('-hcl=discovery_max_stale = "1h"')
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        follower = next(n for n in cluster.servers if n is not leader)
        body = {"Node": "ext", "Address": "10.0.0.9", "Service": {"Service": "web", "Port": 80}}
        leader.json("PUT", "/v1/catalog/register", body)
        eventually(
            lambda: follower.request("GET", "/v1/catalog/service/web?stale")[2] != b"[]",
            what="the registration replicated to the follower",
        )
        cluster.kill(leader)  # two servers: no quorum, no leader from now on
        eventually(
            lambda: follower.request("GET", "/v1/status/leader")[2].strip() == b'""',
            what="the follower noticing it has no leader",
        )

        status, headers, raw = follower.request("GET", "/v1/catalog/service/web")
        assert status == 200, raw
        assert [s["Address"] for s in json.loads(raw)] == ["10.0.0.9"]
        assert headers["X-Consul-KnownLeader"] == "false"
        status, _, raw = follower.request("GET", "/v1/health/service/web")
        assert status == 200, raw
        assert len(json.loads(raw)) == 1

        # asking for the leader's view, and reads outside discovery, still need a leader
        assert follower.request("GET", "/v1/catalog/service/web?leader", timeout=60)[0] == 500
        assert follower.request("GET", "/v1/kv/any", timeout=60)[0] == 500
    finally:
        cluster.stop_all()
