"""Requests received by a client agent are validated and normalized by the server endpoints
(on the leader): what reaches the log is decided there, and a refusal changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.cluster.harness import Cluster

pytestmark = pytest.mark.slow


def test_config_entries_are_validated_on_the_servers(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.clients[0]
    bad = {"Kind": "service-defaults", "Name": "web", "Bogus": 1}
    status, _, raw = client.request("PUT", "/v1/config", json.dumps(bad).encode())
    assert status == 400, raw
    assert raw.decode().startswith("Request decoding failed: ") and "Bogus" in raw.decode()
    assert server.request("GET", "/v1/config/service-defaults/web")[0] == 404
    # Lower-case keys decode as Consul's do; the stored entry is the canonical one.
    good = {"kind": "service-defaults", "name": "web", "protocol": "http"}
    status, _, raw = client.request("PUT", "/v1/config", json.dumps(good).encode())
    assert status == 200 and json.loads(raw) is True, raw
    entry = server.json("GET", "/v1/config/service-defaults/web")
    assert (entry["Kind"], entry["Name"], entry["Protocol"]) == ("service-defaults", "web", "http")


def test_kv_and_operator_refusals_through_a_client(cluster: Cluster) -> None:
    client = cluster.clients[0]
    status, _, raw = client.request("PUT", "/v1/kv/k?acquire=", b"x")
    assert (status, raw.decode()) == (500, "missing session")
    status, _, raw = client.request("DELETE", "/v1/operator/raft/peer")
    assert status == 400 and raw.decode().startswith("Must specify either ?id"), raw
    assert client.request("GET", "/v1/kv/k")[0] == 404
