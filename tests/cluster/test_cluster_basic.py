"""A real 3-server + 1-client cluster: bootstrap, writes anywhere, reads in every mode,
client services in the catalog, failure detection of a killed client agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("cluster")), servers=3, clients=1)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


def test_members_peers_and_catalog(cluster: Cluster) -> None:
    for node in cluster.nodes:
        members = eventually(
            lambda n=node: (
                len(n.json("GET", "/v1/agent/members")) == 4 and n.json("GET", "/v1/agent/members")
            ),
            what="4 members",
        )
        assert {m["Name"] for m in members} == {"s0", "s1", "s2", "c0"}
        assert all(m["Status"] == 1 for m in members)
    peers = cluster.servers[0].json("GET", "/v1/status/peers")
    assert sorted(peers) == sorted(n.rpc_addr for n in cluster.servers)

    def all_registered() -> bool:
        nodes = cluster.clients[0].json("GET", "/v1/catalog/nodes")
        return {n["Node"] for n in nodes} == {"s0", "s1", "s2", "c0"}

    eventually(all_registered, what="every member in the catalog")
    consul = cluster.clients[0].json("GET", "/v1/catalog/service/consul")
    assert sorted(r["Node"] for r in consul) == ["s0", "s1", "s2"]


def test_writes_through_any_agent_and_reads_in_every_mode(cluster: Cluster) -> None:
    for i, node in enumerate(cluster.nodes):
        assert node.json("PUT", f"/v1/kv/multi/{i}", node.name.encode()) is True
    for node in cluster.nodes:
        for mode in ("", "&consistent", "&stale"):
            path = f"/v1/kv/multi/?recurse{mode}"

            def complete(n=node, p=path) -> bool:
                status, _, raw = n.request("GET", p)
                return status == 200 and len(json.loads(raw)) == len(cluster.nodes)

            eventually(complete, what=f"{node.name} {mode or 'default'} read")
        _, headers, _ = node.request("GET", "/v1/kv/multi/0?stale")
        assert headers["X-Consul-KnownLeader"] == "true"
        assert int(headers["X-Consul-LastContact"]) >= 0


def test_client_services_and_sessions(cluster: Cluster) -> None:
    client = cluster.clients[0]
    client.request(
        "PUT",
        "/v1/agent/service/register",
        json.dumps(
            {"Name": "web", "Port": 80, "Check": {"TTL": "60s", "Status": "passing"}}
        ).encode(),
    )
    rows = cluster.servers[1].json("GET", "/v1/catalog/service/web")
    assert [r["Node"] for r in rows] == ["c0"]
    sid = client.json("PUT", "/v1/session/create", {"Name": "lock", "LockDelay": "0s"})["ID"]
    assert client.json("PUT", f"/v1/kv/leader?acquire={sid}", b"c0") is True
    [entry] = cluster.servers[2].json("GET", "/v1/kv/leader")
    assert entry["Session"] == sid
    assert len(cluster.servers[0].json("PUT", f"/v1/session/renew/{sid}")) == 1
