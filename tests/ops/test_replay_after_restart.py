"""A real server restarted on its data dir rebuilds the same state from its snapshot and log,
refused requests included: what the API shows is identical, and the integrity check at start
finds nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import eventually_sync
from tests.ops.procs import BASE, call, get_json, start

BAD_REQUESTS: list[tuple[str, str, bytes]] = [
    (
        "PUT",
        "/v1/txn",
        b'[{"Service":{"Verb":"set","Node":"r1","Service":{"ID":"p1","Service":"p1",'
        b'"Connect":1}}}]',
    ),
    ("PUT", "/v1/txn", b'[{"KV":{"Verb":"set","Key":null,"Value":"eA=="}}]'),
    (
        "PUT",
        "/v1/txn",
        b'[{"KV":{"Verb":"set","Key":"ok-then-bad"}},{"KV":{"Verb":"cas",'
        b'"Key":"x","Index":999999}}]',
    ),
    ("PUT", "/v1/agent/service/register", b'{"Name":"s\\ud800"}'),
    ("PUT", "/v1/agent/check/register", b'{"Name":"t","TTL":1e400}'),
    ("PUT", "/v1/kv/a?cas=%C2%B2", b"x"),
    ("PUT", "/v1/catalog/register", b"[" * 50_000 + b"]" * 50_000),
]


def _state(agent: Any) -> dict[str, Any]:
    checks = get_json(agent, "/v1/health/node/r1")
    return {
        "kv": get_json(agent, "/v1/kv/?recurse"),
        "services": get_json(agent, "/v1/catalog/node-services/r1")["Services"],
        "checks": sorted(
            ({k: c[k] for k in ("CheckID", "Status", "ServiceID")} for c in checks),
            key=lambda c: c["CheckID"],
        ),
        "sessions": [s["ID"] for s in get_json(agent, "/v1/session/list")],
    }


def _leader(agent: Any) -> bool:
    status, body = call(agent, "GET", "/v1/status/leader")
    return status == 200 and body not in (b'""', b"")


def test_restart_replays_to_the_same_state_and_reports_no_integrity_problem(
    tmp_path: Path,
) -> None:
    flags = (
        *BASE,
        "-server",
        "-bootstrap",
        "-node=r1",
        f"-data-dir={tmp_path / 'r1'}",
        "-hcl",
        "raft_snapshot_threshold = 20",
    )
    agent = start(*flags)
    try:
        eventually_sync(lambda: _leader(agent), what="leader")
        eventually_sync(
            lambda: get_json(agent, "/v1/catalog/node/r1") is not None, what="registered"
        )
        for i in range(30):  # past the snapshot threshold: snapshot + log tail at restart
            assert call(agent, "PUT", f"/v1/kv/k/{i % 9}", str(i).encode())[0] == 200
        status, body = call(agent, "PUT", "/v1/session/create", b'{"Name":"s","TTL":"1h"}')
        assert status == 200, body
        session = json.loads(body)["ID"]
        assert call(agent, "PUT", f"/v1/kv/lock?acquire={session}", b"v")[0] == 200
        assert call(agent, "DELETE", "/v1/kv/k/3")[0] == 200
        for method, path, data in BAD_REQUESTS:
            status, body = call(agent, method, path, data)
            assert 400 <= status < 500, (path, body)
        assert call(agent, "PUT", "/v1/agent/service/register", b'{"Name":"web"}')[0] == 200
        eventually_sync(
            lambda: any(s["ID"] == "web" for s in _state(agent)["services"]), what="synced"
        )
        before = _state(agent)
        assert agent.stop() in (0, 1), agent.output()  # Consul: 1 when it did not leave
    finally:
        agent.kill()

    again = start(*flags)
    try:
        eventually_sync(lambda: _leader(again), what="leader after restart")
        eventually_sync(
            lambda: "state integrity" not in again.output() and _state(again)["kv"] == before["kv"],
            what="state replayed",
        )
        assert _state(again) == before
        assert "Traceback" not in again.output()
        assert "state integrity" not in again.output()
    finally:
        again.kill()
