"""DNS on a real 3-server + 1-client cluster: a service registered on the client resolves from
every agent, and a failing check takes it out of every agent's answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from consulpy.util.ports import free_port
from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

CHECK_INTERVAL = 1.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("dnscluster")), servers=3, clients=1)
    for node in c.nodes:
        node.dns = free_port(udp=True)  # type: ignore[attr-defined]
        node.extra = [f"-dns-port={node.dns}"]  # type: ignore[attr-defined]
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


def ask(node: Node, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=node.dns, timeout=2)  # type: ignore[attr-defined]


def addresses(node: Node, name: str) -> set[str]:
    resp = ask(node, name)
    return {r.to_text() for rrset in resp.answer for r in rrset}


def test_client_service_resolves_everywhere_and_leaves_on_failure(cluster: Cluster) -> None:
    client = cluster.clients[0]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        body = {
            "Name": "api",
            "ID": "api-1",
            "Port": port,
            "Address": "127.0.0.9",
            "Check": {"TCP": f"127.0.0.1:{port}", "Interval": f"{CHECK_INTERVAL}s"},
        }
        payload = json.dumps(body).encode()
        status, _, raw = client.request("PUT", "/v1/agent/service/register", payload)
        assert status == 200, raw

        for node in cluster.nodes:
            eventually(
                lambda n=node: addresses(n, "api.service.consul") == {"127.0.0.9"},
                timeout=90,  # anti-entropy, then catalog replication, on a loaded machine
                what=f"api resolves from {node.name}",
            )
            srv = ask(node, "api.service.consul", "SRV")
            assert {r.port for rrset in srv.answer for r in rrset} == {port}
            # Every agent also knows the servers (NS) and the client node itself.
            assert len(ask(node, "consul", "NS").answer[0]) == 3
            assert addresses(node, "c0.node.consul") == {"127.0.0.1"}
    finally:
        listener.close()

    # The TCP check now fails: critical within one interval, then synced to the catalog.
    started = time.monotonic()
    for node in cluster.nodes:
        eventually(
            lambda n=node: ask(n, "api.service.consul").rcode() == dns.rcode.NXDOMAIN,
            timeout=CHECK_INTERVAL + 60,  # generous: the time is printed, not asserted
            what=f"api gone from {node.name}",
        )
    elapsed = time.monotonic() - started
    print(f"failing check left DNS on every agent after {elapsed:.2f}s")


def test_client_agent_runs_prepared_queries_through_the_servers(cluster: Cluster) -> None:
    """A query created on the client agent is stored on the servers (Raft), executes from the
    client over HTTP and DNS, and is visible from every server."""
    client = cluster.clients[0]
    register = {
        "Node": "pq-node",
        "Address": "127.0.0.77",
        "Service": {"ID": "pq-1", "Service": "pq-svc", "Tags": ["blue"], "Port": 7001},
    }
    status, _, raw = client.request("PUT", "/v1/catalog/register", json.dumps(register).encode())
    assert status == 200, raw
    definition = {
        "Name": "pq-blue",
        "Service": {"Service": "pq-svc", "Tags": ["blue", "!green"]},
        "DNS": {"TTL": "7s"},
    }
    status, _, raw = client.request("POST", "/v1/query", json.dumps(definition).encode())
    assert status == 200, raw
    query_id = json.loads(raw)["ID"]

    status, _, raw = client.request("GET", "/v1/query/pq-blue/execute?near=_agent")
    assert status == 200, raw
    doc = json.loads(raw)
    assert [r["Service"]["ID"] for r in doc["Nodes"]] == ["pq-1"]
    assert (doc["Datacenter"], doc["DNS"]) == ("dc1", {"TTL": "7s"})

    # DNS reads are stale by default (dns_config.allow_stale): the server that answers may
    # trail the query's creation by a replication round.
    def dns_answer() -> dns.message.Message | None:
        resp = ask(client, "pq-blue.query.consul")
        got = {r.to_text() for rrset in resp.answer for r in rrset}
        return resp if got == {"127.0.0.77"} else None

    resp = eventually(dns_answer, what="the query answered over DNS")
    assert {rrset.ttl for rrset in resp.answer} == {7}
    for server in cluster.servers:
        eventually(
            lambda s=server: s.request("GET", f"/v1/query/{query_id}?stale")[0] == 200,
            what=f"query replicated to {server.name}",
        )
        assert addresses(server, "pq-blue.query.consul") == {"127.0.0.77"}

    status, _, raw = client.request("DELETE", f"/v1/query/{query_id}")
    assert status == 200, raw
    assert ask(client, "pq-blue.query.consul").rcode() == dns.rcode.NXDOMAIN
