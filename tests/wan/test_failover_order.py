"""Which datacenters a prepared query fails over to, and in what order (Consul's
queryFailover rules), and the WAN address an answer for another datacenter uses."""

from __future__ import annotations

import dns.rdatatype

from consulpy.dns import records
from consulpy.http import translate
from consulpy.server.prepared_query import FailoverTarget, failover_targets

OTHERS = ["dc3", "dc2", "dc4"]  # the other datacenters, nearest first


def dcs(failover: dict) -> list[str]:
    return [t.datacenter or f"peer:{t.peer}" for t in failover_targets(failover, OTHERS)]


def test_nearest_then_listed_without_repeats_unknown_skipped() -> None:
    assert dcs({}) == []
    assert dcs({"NearestN": 2}) == ["dc3", "dc2"]
    assert dcs({"NearestN": 9}) == OTHERS
    assert dcs({"Datacenters": ["dc4", "dc9", "dc1", "dc2"]}) == ["dc4", "dc2"]
    assert dcs({"NearestN": 1, "Datacenters": ["dc2", "dc3"]}) == ["dc3", "dc2"]


def test_targets_in_order_peers_kept_unknown_datacenters_skipped() -> None:
    targets = [{"Datacenter": "dc4"}, {"Peer": "p1"}, {"Datacenter": "dc9"}, {"Datacenter": "dc2"}]
    assert dcs({"Targets": targets}) == ["dc4", "peer:p1", "dc2"]
    assert failover_targets({"Targets": [{"Peer": "p"}]}, []) == [FailoverTarget(peer="p")]


NODE = {
    "Node": "n",
    "Address": "10.0.0.1",
    "TaggedAddresses": {"lan_ipv4": "10.0.0.1", "wan": "192.0.2.1", "wan_ipv4": "192.0.2.1"},
}


def test_wan_address_choice() -> None:
    a = dns.rdatatype.A
    svc = {"Address": "", "Port": 80, "TaggedAddresses": None}
    assert records.instance_address(NODE, svc, a) == "10.0.0.1"
    assert records.instance_address(NODE, svc, a, wan=True) == "192.0.2.1"
    own = {"Address": "10.0.1.1", "Port": 80, "TaggedAddresses": {}}
    assert records.instance_address(NODE, own, a, wan=True) == "10.0.1.1"  # no wan of its own
    tagged = {
        "Address": "10.0.1.1",
        "Port": 80,
        "TaggedAddresses": {"wan": {"Address": "198.51.100.7", "Port": 8443}},
    }
    assert records.instance_address(NODE, tagged, a, wan=True) == "198.51.100.7"
    assert records.instance_port(tagged, wan=True) == 8443
    assert records.instance_port(tagged) == 80
    # HTTP rows: the same choice, tagged addresses kept as stored.
    row = translate.health_rows([{"Node": NODE, "Service": tagged, "Checks": []}])[0]
    assert row["Node"]["Address"] == "192.0.2.1"
    assert (row["Service"]["Address"], row["Service"]["Port"]) == ("198.51.100.7", 8443)
    assert row["Node"]["TaggedAddresses"] == NODE["TaggedAddresses"]
    assert NODE["Address"] == "10.0.0.1"  # the input is not changed
