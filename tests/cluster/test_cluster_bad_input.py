"""A real 3-server cluster fed the fuzzer's bad requests through a follower and the leader, and
transactions that fail inside the state machine (a stale CAS after writes in the same txn):
every server ends with the same state, read from its own store (`?stale`), and no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

BAD: list[tuple[str, str, bytes]] = [
    (
        "PUT",
        "/v1/txn",
        b'[{"Service":{"Verb":"set","Node":"s0","Service":{"ID":"p1","Service":"p1",'
        b'"Connect":1}}}]',
    ),
    ("PUT", "/v1/txn", b'[{"KV":{"Verb":"set","Key":null,"Value":"eA=="}}]'),
    ("PUT", "/v1/catalog/register", b'{"Node":"x","Address":"1.2.3.4","NodeMeta":{"k":NaN}}'),
    ("PUT", "/v1/catalog/register", b'{"Node":"x\\ud800","Address":"1.2.3.4"}'),
    ("PUT", "/v1/session/create", b'{"LockDelay":1e300}'),
    ("PUT", "/v1/kv/a?cas=%C2%B2", b"x"),
    ("PUT", "/v1/txn", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("badinput")), servers=3)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


def _view(node: Node) -> tuple[Any, ...]:
    """What this server's own store holds (stale reads are answered locally)."""
    _, headers, raw = node.request("GET", "/v1/kv/?recurse&stale")
    kv = json.loads(raw) if raw else []
    services = node.json("GET", "/v1/catalog/services?stale")
    nodes = sorted(n["Node"] for n in node.json("GET", "/v1/catalog/nodes?stale"))
    sessions = sorted(s["ID"] for s in node.json("GET", "/v1/session/list?stale"))
    return headers.get("X-Consul-Index"), kv, services, nodes, sessions


def test_bad_input_and_failing_transactions_leave_every_server_identical(
    cluster: Cluster,
) -> None:
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.servers if n is not leader)
    for node in (follower, leader):
        assert node.request("PUT", "/v1/kv/base", b"1")[0] == 200
        for method, path, body in BAD:
            status, _, raw = node.request(method, path, body)
            assert 400 <= status < 500, (node.name, path, status, raw)
        # Applies the first op, then fails on the stale CAS: the whole entry is undone.
        status, _, raw = node.request(
            "PUT",
            "/v1/txn",
            json.dumps(
                [
                    {"KV": {"Verb": "set", "Key": "half", "Value": "eA=="}},
                    {"KV": {"Verb": "cas", "Key": "base", "Index": 1, "Value": "eQ=="}},
                ]
            ).encode(),
        )
        assert status == 409, raw
        assert node.request("GET", "/v1/kv/half")[0] == 404
    assert leader.request("PUT", "/v1/kv/last", b"2")[0] == 200

    def converged() -> bool:
        views = [_view(n) for n in cluster.servers]
        return all(v == views[0] for v in views) and any(e["Key"] == "last" for e in views[0][1])

    eventually(converged, what="every server holds the same state")
    for node in cluster.servers:
        assert node.proc is not None
        assert "Traceback" not in node.proc.output(), node.proc.output()[-3000:]
