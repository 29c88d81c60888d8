"""Two 3-server datacenters (and a client agent in dc1) federated over the WAN pool: WAN
membership, `?dc=` reads and writes through either datacenter, an unknown datacenter, and a
datacenter whose servers are all killed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.agentproc import consulpy
from tests.cluster.harness import Node, eventually
from tests.wan.harness import Federation, federation

NAMES = sorted(f"s{i}.dc{d}" for i in range(3) for d in (1, 2))


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    f = federation(Path(tmp_path_factory.mktemp("wan")))
    with f.running():
        yield f


def wan_members(node: Node) -> dict[str, int]:
    return {m["Name"]: m["Status"] for m in node.json("GET", "/v1/agent/members?wan=1")}


def cli(addr: str, *args: str) -> subprocess.CompletedProcess[str]:
    return consulpy(*args, env={"CONSUL_HTTP_ADDR": addr})


def text(node: Node, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    status, _, raw = node.request(method, path, body)
    return status, raw.decode()


def test_every_server_sees_both_datacenters_in_the_wan_pool(fed: Federation) -> None:
    for node in fed.servers:
        eventually(
            lambda node=node: wan_members(node) == dict.fromkeys(NAMES, 1),
            60,
            what=f"{node.name} sees all six servers alive over the WAN",
        )
    members = fed.dc2.servers[0].json("GET", "/v1/agent/members?wan=1")
    s1 = next(m for m in members if m["Name"] == "s1.dc1")
    assert s1["Tags"]["role"] == "consul" and s1["Tags"]["dc"] == "dc1"
    assert s1["Tags"]["port"] == str(fed.dc1.servers[1].rpc)
    assert s1["Port"] == fed.wan_ports["s1.dc1"]
    assert s1["Tags"]["wan_join_port"] == str(fed.wan_ports["s1.dc1"])
    # A client agent is in no WAN pool, as in Consul.
    assert fed.dc1.clients[0].json("GET", "/v1/agent/members?wan=1") == []
    # The CLI.
    out = cli(fed.dc1.servers[0].http_addr, "members", "-wan")
    assert out.returncode == 0, out.stderr
    for name in NAMES:
        assert name in out.stdout
    assert out.stdout.count("alive") == 6


def test_wan_pool_records_the_gossip_metrics_labelled_wan(fed: Federation) -> None:
    """A server's WAN pool records the LAN pool's memberlist/Serf metrics, labelled
    network="wan" as Consul labels them; the LAN series stay network="lan"."""
    node = fed.dc1.servers[0]
    eventually(lambda: len(wan_members(node)) == 6, 60, what="s0.dc1 sees the WAN pool")
    wan, lan = {"network": "wan"}, {"network": "lan"}

    def scrape() -> dict[str, Any]:
        status, _, body = node.request("GET", "/v1/agent/metrics?format=prometheus")
        assert status == 200, body
        return {f.name: f for f in text_string_to_metric_families(body.decode())}

    def total(families: dict[str, Any], family: str, sample: str, labels: dict[str, str]) -> float:
        f = families.get(family)
        return sum(
            s.value
            for s in (f.samples if f is not None else [])
            if s.name in (sample, sample + "_total") and s.labels == labels
        )

    def wan_series_counted() -> bool:
        m = scrape()
        return all(
            total(m, family, sample, wan) > 0
            for family, sample in (
                ("consul_serf_member_join", "consul_serf_member_join"),
                ("consul_memberlist_udp_sent", "consul_memberlist_udp_sent"),
                ("consul_memberlist_udp_received", "consul_memberlist_udp_received"),
                ("consul_memberlist_probeNode", "consul_memberlist_probeNode_count"),
                ("consul_memberlist_gossip", "consul_memberlist_gossip_count"),
                ("consul_memberlist_msg_alive", "consul_memberlist_msg_alive"),
            )
        )

    eventually(wan_series_counted, 60, what="WAN gossip metrics labelled network=wan")
    m = scrape()
    # Joins counted per pool: the five other servers over the WAN; dc1's other two
    # servers and its client agent over the LAN.
    assert total(m, "consul_serf_member_join", "consul_serf_member_join", wan) >= 5
    assert total(m, "consul_serf_member_join", "consul_serf_member_join", lan) >= 3
    health = {tuple(sorted(s.labels.items())) for s in m["consul_memberlist_health_score"].samples}
    assert health == {(("network", "lan"),), (("network", "wan"),)}
    # The client agent has no WAN pool, so no WAN series.
    status, _, body = fed.dc1.clients[0].request("GET", "/v1/agent/metrics?format=prometheus")
    assert status == 200 and b'network="wan"' not in body and b'network="lan"' in body


def test_datacenters_lists_both_everywhere(fed: Federation) -> None:
    for node in [*fed.servers, fed.dc1.clients[0]]:
        eventually(
            lambda node=node: sorted(node.json("GET", "/v1/catalog/datacenters")) == ["dc1", "dc2"],
            30,
            what=f"{node.name} lists dc1 and dc2",
        )
    coords = fed.dc1.servers[0].json("GET", "/v1/coordinate/datacenters")
    assert sorted(c["Datacenter"] for c in coords) == ["dc1", "dc2"]
    # WAN coordinates come from the WAN pool's probes: `rtt -wan` across datacenters.
    addr = fed.dc1.servers[0].http_addr
    eventually(
        lambda: cli(addr, "rtt", "-wan", "s1.dc1", "s2.dc2").returncode == 0,
        30,
        what="WAN coordinates of s1.dc1 and s2.dc2",
    )
    out = cli(addr, "rtt", "-wan", "s1.dc1", "s2.dc2").stdout
    assert "(using WAN coordinates)" in out


def test_kv_written_in_dc2_through_a_dc1_client_agent(fed: Federation) -> None:
    client = fed.dc1.clients[0]
    assert text(client, "PUT", "/v1/kv/fed/a?dc=dc2", b"from-dc1") == (200, "true")
    # It is in dc2, on every server of dc2 (a default read goes to dc2's leader) ...
    for node in fed.dc2.servers:
        assert text(node, "GET", "/v1/kv/fed/a?raw") == (200, "from-dc1")
    # ... readable from dc1 with ?dc=dc2, and absent from dc1's own store.
    assert text(client, "GET", "/v1/kv/fed/a?raw&dc=dc2") == (200, "from-dc1")
    assert text(fed.dc1.servers[1], "GET", "/v1/kv/fed/a?raw&dc=dc2") == (200, "from-dc1")
    assert text(client, "GET", "/v1/kv/fed/a?raw")[0] == 404
    # The other way: dc2's server writes into dc1.
    assert text(fed.dc2.servers[2], "PUT", "/v1/kv/fed/b?dc=dc1", b"from-dc2") == (200, "true")
    assert text(client, "GET", "/v1/kv/fed/b?raw") == (200, "from-dc2")
    assert text(fed.dc2.servers[0], "GET", "/v1/kv/fed/b?raw")[0] == 404
    # A write the other datacenter's servers refuse answers what they answer at home.
    lock = "/v1/kv/fed/c?acquire=00000000-0000-0000-0000-000000000000"
    status, body = text(client, "PUT", lock + "&dc=dc2", b"v")
    assert (status, body) == text(fed.dc2.servers[0], "PUT", lock, b"v")
    assert status == 500 and "session" in body


def test_catalog_and_health_through_dc(fed: Federation) -> None:
    client = fed.dc1.clients[0]
    reg = {"Node": "ext-dc2", "Address": "10.2.0.1", "Service": {"Service": "db", "Port": 5432}}
    assert text(client, "PUT", "/v1/catalog/register?dc=dc2", json.dumps(reg).encode()) == (
        200,
        "true",
    )
    nodes = {n["Node"]: n for n in client.json("GET", "/v1/catalog/nodes?dc=dc2")}
    assert set(nodes) == {"s0", "s1", "s2", "ext-dc2"}
    assert nodes["ext-dc2"]["Datacenter"] == "dc2"
    local = {n["Node"] for n in client.json("GET", "/v1/catalog/nodes")}
    assert local == {"s0", "s1", "s2", "c0"}
    health = client.json("GET", "/v1/health/service/db?dc=dc2")
    assert [h["Node"]["Node"] for h in health] == ["ext-dc2"]
    assert client.json("GET", "/v1/health/service/db") == []


def test_status_of_the_other_datacenter(fed: Federation) -> None:
    dc2_rpc = {n.rpc_addr for n in fed.dc2.servers}
    for node in (fed.dc1.clients[0], fed.dc1.servers[1]):
        assert node.json("GET", "/v1/status/leader?dc=dc2") in dc2_rpc
        assert set(node.json("GET", "/v1/status/peers?dc=dc2")) == dc2_rpc
        assert node.json("GET", "/v1/status/leader") not in dc2_rpc


def test_unknown_datacenter_is_no_path(fed: Federation) -> None:
    for node in (fed.dc1.servers[0], fed.dc1.clients[0], fed.dc2.servers[1]):
        assert text(node, "GET", "/v1/kv/fed/a?dc=dc9") == (500, "No path to datacenter")
        assert text(node, "PUT", "/v1/kv/fed/a?dc=dc9", b"x") == (500, "No path to datacenter")


def test_zz_killed_datacenter_is_failed_and_no_path(fed: Federation) -> None:
    """Runs last (module order): kills all of dc2's servers."""
    for node in fed.dc2.servers:
        fed.dc2.kill(node)
    dc1 = fed.dc1.servers[0]
    dc2_names = [n for n in NAMES if n.endswith(".dc2")]
    eventually(
        lambda: all(wan_members(dc1)[n] == 4 for n in dc2_names),
        60,
        what="dc1 reports every dc2 server failed over the WAN",
    )
    out = cli(dc1.http_addr, "members", "-wan")
    assert out.stdout.count("failed") == 3 and out.stdout.count("alive") == 3
    client = fed.dc1.clients[0]
    assert text(client, "GET", "/v1/kv/fed/a?dc=dc2") == (500, "No path to datacenter")
    assert text(dc1, "PUT", "/v1/kv/fed/a?dc=dc2", b"x") == (500, "No path to datacenter")
    # dc1 keeps serving its own requests.
    assert text(client, "PUT", "/v1/kv/fed/after", b"ok") == (200, "true")
    assert text(fed.dc1.servers[2], "GET", "/v1/kv/fed/after?raw") == (200, "ok")
    # Force-leave over the WAN: the failed member is marked left.
    out = cli(dc1.http_addr, "force-leave", "-wan", "s0.dc2")
    assert out.returncode == 0, out.stderr
    eventually(lambda: wan_members(dc1).get("s0.dc2", 3) == 3, 30, what="s0.dc2 left")
    # A plain force-leave of a failed server of our own datacenter: it leaves both pools.
    fed.dc1.kill(fed.dc1.servers[2])
    eventually(lambda: wan_members(dc1)["s2.dc1"] == 4, 60, what="s2.dc1 failed")
    out = cli(dc1.http_addr, "force-leave", "s2")
    assert out.returncode == 0, out.stderr

    def left_both() -> bool:
        lan = {m["Name"]: m["Status"] for m in dc1.json("GET", "/v1/agent/members")}
        return lan.get("s2", 3) == 3 and wan_members(dc1).get("s2.dc1", 3) == 3

    eventually(left_both, 30, what="s2 left the LAN and the WAN pool")
