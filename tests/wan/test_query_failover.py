"""Two datacenters of one server each (and a client agent in dc1), federated over the WAN:
prepared queries fail over to dc2 when dc1's instances are critical (HTTP and DNS), DNS
answers names of dc2 from dc1's agents, and `translate_wan_addrs` shows dc2's instances at
their WAN addresses. dc1's server translates; dc1's client agent does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from consulpy.util.ports import free_port
from tests.cluster.harness import Node, eventually
from tests.wan.harness import Federation, federation

DC1_ADDR = "10.1.0.1"
DC2_ADDR = "10.2.0.2"  # the dc2 node's LAN address
DC2_WAN = "192.0.2.22"  # its `wan` tagged address
DC2_PORT, DC2_WAN_PORT = 9090, 19090


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    f = federation(Path(tmp_path_factory.mktemp("pqdc")), servers=1, clients=1)
    server, client = f.dc1.servers[0], f.dc1.clients[0]
    for node in (server, client):
        node.dns = free_port(udp=True)  # type: ignore[attr-defined]
        node.extra.append(f"-dns-port={node.dns}")  # type: ignore[attr-defined]
    server.extra.append("-hcl=translate_wan_addrs = true")
    f.dc2.servers[0].extra.append('-hcl=advertise_addr_wan_ipv4 = "127.0.0.2"')
    with f.running():
        for node in (server, client):
            eventually(
                lambda node=node: node.json("GET", "/v1/catalog/datacenters") == ["dc1", "dc2"],
                60,
                what=f"{node.name} knows dc2",
            )
        _load(f)
        yield f


def _register(node: Node, name: str, address: str, status: str, **extra: Any) -> None:
    body = {
        "Node": name,
        "Address": address,
        "Service": {"ID": "api", "Service": "api", "Port": extra.pop("port", 8080), **extra},
        "Check": {"CheckID": "api-up", "Name": "api up", "ServiceID": "api", "Status": status},
    }
    if name == "api-dc2":
        body["TaggedAddresses"] = {"wan": DC2_WAN}
    node.json("PUT", "/v1/catalog/register", body)


def _load(f: Federation) -> None:
    dc1, dc2 = f.dc1.servers[0], f.dc2.servers[0]
    _register(dc1, "api-dc1", DC1_ADDR, "critical")
    _register(
        dc2,
        "api-dc2",
        DC2_ADDR,
        "passing",
        port=DC2_PORT,
        TaggedAddresses={"wan": {"Address": DC2_WAN, "Port": DC2_WAN_PORT}},
    )
    for name, failover in (
        ("api-fo", {"Datacenters": ["dc9", "dc1", "dc2"]}),  # dc9 unknown, dc1 ours: skipped
        ("api-near", {"NearestN": 1}),
        ("api-local", {}),
    ):
        dc1.json(
            "POST", "/v1/query", {"Name": name, "Service": {"Service": "api", "Failover": failover}}
        )
    dc2.json("POST", "/v1/query", {"Name": "api-there", "Service": {"Service": "api"}})


def execute(node: Node, query: str) -> tuple[dict[str, Any], dict[str, str]]:
    status, headers, raw = node.request("GET", f"/v1/query/{query}/execute")
    assert status == 200, raw
    return json.loads(raw), headers


def ask(node: Node, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=node.dns, timeout=10)  # type: ignore[attr-defined]


def answers(node: Node, name: str, rdtype: str = "A") -> set[str]:
    return {r.to_text() for rrset in ask(node, name, rdtype).answer for r in rrset}


def test_http_execute_fails_over_to_dc2(fed: Federation) -> None:
    client, server = fed.dc1.clients[0], fed.dc1.servers[0]
    out, headers = execute(client, "api-fo")
    assert out["Datacenter"] == "dc2" and out["Failovers"] == 1
    assert [n["Node"]["Node"] for n in out["Nodes"]] == ["api-dc2"]
    assert out["Nodes"][0]["Node"]["Address"] == DC2_ADDR  # the client does not translate
    assert "X-Consul-Translate-Addresses" not in headers
    # dc1's server translates: the node's and the service's WAN addresses.
    out, headers = execute(server, "api-fo")
    assert out["Datacenter"] == "dc2" and out["Failovers"] == 1
    row = out["Nodes"][0]
    assert row["Node"]["Address"] == DC2_WAN
    assert (row["Service"]["Address"], row["Service"]["Port"]) == (DC2_WAN, DC2_WAN_PORT)
    assert headers["X-Consul-Translate-Addresses"] == "true"
    # NearestN=1: the nearest other datacenter is dc2, the only one.
    out, _ = execute(client, "api-near")
    assert (out["Datacenter"], out["Failovers"]) == ("dc2", 1)
    assert [n["Node"]["Node"] for n in out["Nodes"]] == ["api-dc2"]
    # No failover configured: dc1's empty answer.
    out, _ = execute(client, "api-local")
    assert (out["Datacenter"], out["Failovers"], out["Nodes"]) == ("dc1", 0, [])


def test_http_translation_of_other_datacenter_reads(fed: Federation) -> None:
    client, server = fed.dc1.clients[0], fed.dc1.servers[0]
    status, headers, _ = server.request("GET", "/v1/health/service/api?dc=dc2")
    rows = server.json("GET", "/v1/health/service/api?dc=dc2")
    assert status == 200 and headers["X-Consul-Translate-Addresses"] == "true"
    assert rows[0]["Node"]["Address"] == DC2_WAN
    assert rows[0]["Node"]["TaggedAddresses"]["wan"] == DC2_WAN
    assert client.json("GET", "/v1/health/service/api?dc=dc2")[0]["Node"]["Address"] == DC2_ADDR
    flat = server.json("GET", "/v1/catalog/service/api?dc=dc2")[0]
    assert (flat["Address"], flat["ServiceAddress"], flat["ServicePort"]) == (
        DC2_WAN,
        DC2_WAN,
        DC2_WAN_PORT,
    )
    nodes = {n["Node"]: n["Address"] for n in server.json("GET", "/v1/catalog/nodes?dc=dc2")}
    assert nodes["api-dc2"] == DC2_WAN
    node = server.json("GET", "/v1/catalog/node/api-dc2?dc=dc2")
    assert node["Node"]["Address"] == DC2_WAN
    assert node["Services"]["api"]["Address"] == DC2_WAN
    listed = server.json("GET", "/v1/catalog/node-services/api-dc2?dc=dc2")
    assert listed["Node"]["Address"] == DC2_WAN
    assert (listed["Services"][0]["Address"], listed["Services"][0]["Port"]) == (
        DC2_WAN,
        DC2_WAN_PORT,
    )
    # The local datacenter is never translated.
    assert server.json("GET", "/v1/health/service/api")[0]["Node"]["Address"] == DC1_ADDR


def test_dns_prepared_query_fails_over(fed: Federation) -> None:
    client, server = fed.dc1.clients[0], fed.dc1.servers[0]
    assert answers(client, "api-fo.query.consul") == {DC2_ADDR}
    assert answers(server, "api-fo.query.consul") == {DC2_WAN}
    assert answers(client, "api-near.query.consul") == {DC2_ADDR}
    srv = ask(client, "api-fo.query.consul", "SRV")
    assert [r.to_text() for rrset in srv.answer for r in rrset] == [
        f"1 1 {DC2_PORT} api-dc2.node.dc2.consul."
    ]
    srv = ask(server, "api-fo.query.consul", "SRV")
    assert [r.to_text() for rrset in srv.answer for r in rrset] == [
        f"1 1 {DC2_WAN_PORT} {_hex(DC2_WAN)}.addr.dc2.consul."
    ]
    assert ask(client, "api-local.query.consul").rcode() == dns.rcode.NXDOMAIN


def _hex(ip: str) -> str:
    return "".join(f"{int(p):02x}" for p in ip.split("."))


def test_dns_names_of_another_datacenter(fed: Federation) -> None:
    client, server = fed.dc1.clients[0], fed.dc1.servers[0]
    assert answers(client, "api.service.dc2.consul") == {DC2_ADDR}
    assert answers(server, "api.service.dc2.consul") == {DC2_WAN}
    assert answers(client, "api.service.consul") == set()  # dc1's one is critical
    assert answers(client, "api-dc2.node.dc2.consul") == {DC2_ADDR}
    assert answers(server, "api-dc2.node.dc2.consul") == {DC2_WAN}
    assert answers(client, "api-dc1.node.dc1.consul") == {DC1_ADDR}
    srv = ask(client, "_api._tcp.service.dc2.consul", "SRV")
    assert [r.to_text() for rrset in srv.answer for r in rrset] == [
        f"1 1 {DC2_PORT} api-dc2.node.dc2.consul."
    ]
    # A query stored in dc2, executed there.
    assert answers(client, "api-there.query.dc2.consul") == {DC2_ADDR}
    assert answers(server, "api-there.query.dc2.consul") == {DC2_WAN}
    # A datacenter nobody knows.
    assert ask(client, "api.service.dc9.consul").rcode() == dns.rcode.NXDOMAIN
    assert ask(server, "api.node.dc9.consul").rcode() == dns.rcode.NXDOMAIN


def test_advertised_wan_addresses_are_tagged(fed: Federation) -> None:
    client = fed.dc1.clients[0]

    def tagged() -> dict[str, str]:
        node = client.json("GET", "/v1/catalog/node/s0?dc=dc2")
        return (node or {}).get("Node", {}).get("TaggedAddresses") or {}

    eventually(lambda: tagged().get("wan_ipv4") == "127.0.0.2", 60, what="dc2's s0 synced")
    assert tagged()["wan"] == "127.0.0.1" and tagged()["lan_ipv4"] == "127.0.0.1"


def test_a_healthy_local_instance_is_answered_without_failover(fed: Federation) -> None:
    # Runs last: dc1's api becomes healthy.
    client, server = fed.dc1.clients[0], fed.dc1.servers[0]
    _register(server, "api-dc1", DC1_ADDR, "passing")
    out, _ = execute(client, "api-fo")
    assert (out["Datacenter"], out["Failovers"]) == ("dc1", 0)
    assert [n["Node"]["Node"] for n in out["Nodes"]] == ["api-dc1"]
    assert answers(client, "api-fo.query.consul") == {DC1_ADDR}
    assert answers(server, "api-fo.query.consul") == {DC1_ADDR}  # ours: never translated
