"""The gossip, Raft replication and RPC metrics as an operator scrapes them from real agent
processes (two servers and a client): each appears in /v1/agent/metrics and in the Prometheus
exposition with Consul's name, type and labels once the event behind it has happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

LAN = {"network": "lan"}


def scrape(node: Node) -> dict[str, Any]:
    status, _, body = node.request("GET", "/v1/agent/metrics?format=prometheus")
    assert status == 200, body
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    """Sum of `sample` in `family` over the series carrying `labels`."""
    f = families.get(family)
    if f is None:
        return 0.0
    names = (sample, sample + "_total")
    return sum(
        s.value
        for s in f.samples
        if s.name in names and all(s.labels.get(k) == v for k, v in labels.items())
    )


def has(families: dict[str, Any], family: str, kind: str, **labels: str) -> bool:
    """`family` exists with type `kind` and a series with `labels` has counted something."""
    f = families.get(family)
    if f is None or f.type != kind:
        return False
    sample = family + ("_count" if kind == "summary" else "")
    return value(families, family, sample, **labels) > 0


def json_names(node: Node) -> dict[str, set[str]]:
    """Names in the last reported interval of /v1/agent/metrics, by section."""
    raw = node.json("GET", "/v1/agent/metrics")
    return {k: {m["Name"] for m in raw[k]} for k in ("Counters", "Samples", "Gauges")}


def test_gossip_replication_and_rpc_metrics_on_a_cluster(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=2, clients=1)
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        follower = next(n for n in cluster.servers if n is not leader)
        client = cluster.clients[0]
        servers = leader.json("GET", "/v1/operator/raft/configuration")["Servers"]
        peer = next(s["ID"] for s in servers if s["Node"] == follower.name)
        read_only = json.dumps([{"KV": {"Verb": "get", "Key": "m/x"}}]).encode()

        def traffic() -> None:
            """One of each event: a write through the client (an RPC to a server, then
            replication), a read-only transaction on the leader, a user event (Serf messages)."""
            assert client.request("PUT", "/v1/kv/m/x", b"v")[0] == 200
            assert leader.request("PUT", "/v1/txn", read_only)[0] == 200
            assert client.request("PUT", "/v1/event/fire/deploy", b"")[0] == 200

        traffic()
        peer_l = {"peer_id": peer}
        kvs_call = {
            "method": "KVS.Apply",
            "errored": "false",
            "request_type": "write",
            "rpc_type": "net/rpc",
            "leader": "true",
        }
        txn_call = {"method": "Txn.Read", "request_type": "read", "rpc_type": "internal"}
        wanted = [
            ("consul_raft_replication_appendEntries_rpc", "summary", peer_l),
            ("consul_raft_replication_appendEntries_logs", "counter", peer_l),
            ("consul_raft_replication_heartbeat", "summary", peer_l),
            ("consul_rpc_server_call", "summary", kvs_call),
            ("consul_rpc_server_call", "summary", txn_call),
            ("consul_txn_read", "summary", {}),
            ("consul_memberlist_probeNode", "summary", LAN),
            ("consul_memberlist_gossip", "summary", LAN),
            ("consul_memberlist_msg_alive", "counter", LAN),
            ("consul_serf_msgs_received", "summary", LAN),
            ("consul_serf_coordinate_adjustment_ms", "summary", LAN),
        ]

        def leader_shows_all() -> bool:
            families = scrape(leader)
            missing = [name for name, kind, lb in wanted if not has(families, name, kind, **lb)]
            assert not missing, missing
            return True

        eventually(leader_shows_all, timeout=60, what="the new metrics in the leader's scrape")

        def client_sent() -> bool:
            traffic()  # the client passes the event on to the others by gossip
            return has(scrape(client), "consul_serf_msgs_sent", "summary", **LAN)

        eventually(client_sent, timeout=60, interval=1.0, what="Serf messages sent by the client")

        # The JSON view reports the last finished 10 s interval: keep the traffic going until
        # an interval holding all of it has closed.
        in_json = {
            "Samples": {
                "consul.raft.replication.appendEntries.rpc",
                "consul.raft.replication.heartbeat",
                "consul.rpc.server.call",
                "consul.txn.read",
                "consul.memberlist.probeNode",
                "consul.memberlist.gossip",
                "consul.serf.msgs.received",
            },
            "Counters": {"consul.raft.replication.appendEntries.logs"},
        }

        def json_shows_all() -> bool:
            traffic()
            names = json_names(leader)
            missing = {k: v - names[k] for k, v in in_json.items() if v - names[k]}
            assert not missing, missing
            return True

        eventually(json_shows_all, timeout=60, interval=1.0, what="the new metrics in the JSON")
        raw = leader.json("GET", "/v1/agent/metrics")
        beats = [s for s in raw["Samples"] if s["Name"] == "consul.raft.replication.heartbeat"]
        assert {"peer_id": peer} in [s["Labels"] for s in beats]

        # A member that dies: suspected, then declared dead, counted by the survivors.
        cluster.kill(client)

        def failure_counted() -> bool:
            families = scrape(leader)
            for name in ("consul_memberlist_msg_suspect", "consul_memberlist_msg_dead"):
                assert has(families, name, "counter", **LAN), name
            return True

        eventually(failure_counted, timeout=60, what="suspect and dead counted on the leader")
    finally:
        cluster.stop_all()
