"""Lock-delay and session timers follow the leader's clock, not the clock of the client agent
that received the HTTP call (the leader stamps `ts` into the commands it proposes).

The client agent runs as its own process with its wall clock (`time.time`) an hour behind,
injected through a sitecustomize module in that process only. Before the endpoint layer, the
client stamped the session-destroy command with its own clock, so a lock-delay started an hour
in the past and was already over when the server was asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

SKEW_S = -3600.0
SITECUSTOMIZE = """
import os
import time

_skew = float(os.environ.get("CONSULPY_TEST_CLOCK_SKEW", "0"))
if _skew:
    _real_time = time.time
    time.time = lambda: _real_time() + _skew
    with open(os.environ["CONSULPY_TEST_CLOCK_MARKER"], "w") as fh:
        fh.write(repr(time.time()))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = Path(tmp_path_factory.mktemp("clock"))
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    c = Cluster(tmp, servers=1, clients=1)
    mp = pytest.MonkeyPatch()
    try:
        c.start(c.servers[0])
        c.wait_leader()
        mp.setenv("PYTHONPATH", f"{site}:{Path.cwd()}")
        mp.setenv("CONSULPY_TEST_CLOCK_SKEW", str(SKEW_S))
        mp.setenv("CONSULPY_TEST_CLOCK_MARKER", str(tmp / "skewed"))
        c.start(c.clients[0])  # only this process inherits the skew
        mp.undo()
        assert (tmp / "skewed").exists(), "the client agent did not load the skewed clock"
        c.wait_leader()
        yield c
    finally:
        mp.undo()
        c.stop_all()


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
