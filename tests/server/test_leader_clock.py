"""Lock-delay and session timers follow the leader's clock, not the clock of the client agent
that received the HTTP call (the leader stamps `ts` into the commands it proposes).

The client agent runs as its own process with its wall clock (`time.time`) an hour behind,
injected through a sitecustomize module in that process only (tests/server/conftest.py).
Before the endpoint layer, the client stamped the session-destroy command with its own clock,
so a lock-delay started an hour in the past and was already over when the server was asked."""

from __future__ import annotations

import json

import pytest

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow


def _put(node: Node, path: str, body: object = b"") -> object:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, raw = node.request("PUT", path, data)
    assert status == 200, (node.name, path, status, raw)
    return json.loads(raw)


def _registered(node: Node, name: str) -> bool:
    status, _, raw = node.request("GET", f"/v1/health/node/{name}")
    checks = json.loads(raw) if status == 200 else []
    return any(c["CheckID"] == "serfHealth" and c["Status"] == "passing" for c in checks)


def test_lock_delay_runs_on_the_leaders_clock(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.clients[0]
    eventually(lambda: _registered(server, client.name), what="client node in the catalog")
    # Through the skewed client: take a lock, then destroy the session holding it.
    s1 = _put(client, "/v1/session/create", {"LockDelay": "60s", "Name": "skewed"})["ID"]
    assert _put(client, f"/v1/kv/lock?acquire={s1}", b"held") is True
    assert _put(client, f"/v1/session/destroy/{s1}") is True
    # The lock-delay started now (leader clock) and lasts 60 s: nobody may take the lock,
    # whichever agent they ask.
    s2 = _put(server, "/v1/session/create", {"Name": "other"})["ID"]
    assert _put(server, f"/v1/kv/lock?acquire={s2}", b"mine") is False
    assert _put(client, f"/v1/kv/lock?acquire={s2}", b"mine") is False
    # A plain write is not affected by lock-delay.
    assert _put(client, "/v1/kv/lock", b"plain") is True


def test_session_ttl_renewal_through_the_skewed_client(cluster: Cluster) -> None:
    client = cluster.clients[0]
    sid = _put(client, "/v1/session/create", {"TTL": "30s", "Name": "ttl"})["ID"]
    renewed = _put(client, f"/v1/session/renew/{sid}")
    assert isinstance(renewed, list) and renewed[0]["ID"] == sid and renewed[0]["TTL"] == "30s"
    assert _put(client, f"/v1/session/destroy/{sid}") is True
    status, _, _ = client.request("PUT", f"/v1/session/renew/{sid}")
    assert status == 404
