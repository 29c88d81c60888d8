"""/v1/session/*: creation rules, defaults, invalidation, renew, TTL expiry."""

from __future__ import annotations

import json

from tests.conftest import HTTP
from tests.helpers import eventually


async def create(http: HTTP, body: object = None) -> str:
    status, _, raw = await http.put(
        "/v1/session/create", None if body is None else json.dumps(body)
    )
    assert status == 200, raw
    return json.loads(raw)["ID"]


async def info(http: HTTP, sid: str) -> list[dict]:
    return await http.json("GET", f"/v1/session/info/{sid}")


async def test_defaults(http: HTTP, agent) -> None:
    sid = await create(http)
    assert len(sid) == 36
    [s] = await info(http, sid)
    assert s == {
        "ID": sid,
        "Name": "",
        "Node": agent.agent.node_name,
        "LockDelay": 15_000_000_000,
        "Behavior": "release",
        "TTL": "",
        "NodeChecks": ["serfHealth"],
        "ServiceChecks": None,
        "CreateIndex": s["CreateIndex"],
        "ModifyIndex": s["CreateIndex"],
    }


async def test_lenient_body_keys_and_lock_delay_rules(http: HTTP) -> None:
    # py-consul style lowercase keys; unknown keys ignored
    sid = await create(
        http, {"name": "x", "lockdelay": 5, "behavior": "delete", "ttl": "20s", "Whatever": 1}
    )
    [s] = await info(http, sid)
    assert (s["Name"], s["LockDelay"], s["Behavior"], s["TTL"]) == (
        "x",
        5_000_000_000,
        "delete",
        "20s",
    )
    sid = await create(http, {"LockDelay": "0.001s"})
    assert (await info(http, sid))[0]["LockDelay"] == 1_000_000
    sid = await create(http, {"LockDelay": "0s"})
    assert (await info(http, sid))[0]["LockDelay"] == 0


async def test_checks_fixup(http: HTTP) -> None:
    sid = await create(http, {"Checks": []})
    [s] = await info(http, sid)
    assert s["NodeChecks"] == [] and "Checks" not in s
    sid = await create(http, {"NodeChecks": []})
    [s] = await info(http, sid)
    assert s["NodeChecks"] == [] and "Checks" not in s


async def test_validation_errors(http: HTTP) -> None:
    cases = [
        ({"Behavior": "explode"}, "Invalid Behavior setting 'explode'"),
        ({"TTL": "5ms"}, "Invalid Session TTL '5000000', must be between [1s=24h0m0s]"),
        ({"TTL": "48h"}, "Invalid Session TTL '172800000000000', must be between [1s=24h0m0s]"),
        ({"TTL": "soon"}, "Session TTL 'soon' invalid: "),
        ({"Node": "ghost"}, "Missing node registration"),
        ({"NodeChecks": ["nope"]}, "Missing check 'nope' registration"),
    ]
    for body, text in cases:
        status, _, raw = await http.put("/v1/session/create", json.dumps(body))
        assert status == 500 and raw.decode().startswith(text), (body, raw)
    status, _, raw = await http.put("/v1/session/create", "{not json")
    assert status == 400 and raw.startswith(b"Request decode failed:")
    assert await http.json("GET", "/v1/session/list") == []


async def test_list_node_info_destroy(http: HTTP, agent) -> None:
    a, b = await create(http), await create(http)
    listed = await http.json("GET", "/v1/session/list")
    assert sorted(s["ID"] for s in listed) == sorted([a, b])
    node = agent.agent.node_name
    assert len(await http.json("GET", f"/v1/session/node/{node}")) == 2
    assert await http.json("GET", "/v1/session/node/other") == []
    status, headers, _ = await http.get(f"/v1/session/info/{a}")
    assert headers["X-Consul-Index"] and headers["X-Consul-KnownLeader"] == "true"
    assert await http.json("PUT", f"/v1/session/destroy/{a}") is True
    assert await info(http, a) == []
    assert await http.json("PUT", f"/v1/session/destroy/{a}") is True  # idempotent
    assert (await http.put("/v1/session/destroy/"))[:3:2] == (400, b"Missing session")
    assert (await http.get("/v1/session/node/"))[:3:2] == (400, b"Missing node name")
    status, _, raw = await http.get("/v1/session/info/not-a-uuid")
    assert status == 500 and b"UUID must be 36 characters" in raw
    # memdb's UUID index: 36 hex characters without hyphens is a key that matches nothing.
    assert await info(http, "1" * 36) == []
    assert (await http.put(f"/v1/session/renew/{'1' * 36}"))[0] == 404
    assert await http.json("PUT", f"/v1/session/destroy/{'1' * 36}") is True
    status, _, raw = await http.get(f"/v1/session/info/{'x' * 36}")
    assert status == 500 and raw == b"Invalid UUID: encoding/hex: invalid byte: U+0078 'x'"
    assert (await http.request("GET", "/v1/session/create"))[0] == 405


async def test_renew(http: HTTP) -> None:
    sid = await create(http, {"TTL": "15s"})
    [s] = await http.json("PUT", f"/v1/session/renew/{sid}")
    assert s["ID"] == sid and s["TTL"] == "15s"
    ghost = "00000000-0000-0000-0000-000000000000"
    status, _, raw = await http.put(f"/v1/session/renew/{ghost}")
    assert status == 404 and raw == f"Session id '{ghost}' not found".encode()


async def test_ttl_expiry_releases_locks_after_grace(http: HTTP) -> None:
    # session_ttl_min is 1s in the test agent; Consul destroys after 2 x TTL.
    sid = await create(http, {"TTL": "1s", "LockDelay": "0s"})
    assert json.loads((await http.put(f"/v1/kv/held?acquire={sid}", b"x"))[2]) is True

    async def gone() -> bool:
        return await info(http, sid) == []

    await eventually(gone, timeout=15)
    [entry] = await http.json("GET", "/v1/kv/held")
    assert "Session" not in entry


async def test_renew_keeps_session_alive(http: HTTP) -> None:
    import asyncio
    import time

    sid = await create(http, {"TTL": "1s"})
    deadline = time.monotonic() + 3.5  # well past 2 x TTL
    renew_every = 0.3  # a client's renew cadence, not synchronisation
    while time.monotonic() < deadline:
        await http.json("PUT", f"/v1/session/renew/{sid}")
        await asyncio.sleep(renew_every)
    assert len(await info(http, sid)) == 1


async def test_delete_behavior_on_destroy(http: HTTP) -> None:
    sid = await create(http, {"Behavior": "delete", "LockDelay": "0s"})
    assert json.loads((await http.put(f"/v1/kv/eph?acquire={sid}", b"x"))[2]) is True
    await http.json("PUT", f"/v1/session/destroy/{sid}")
    assert (await http.get("/v1/kv/eph"))[0] == 404


async def test_lock_delay_after_invalidation(http: HTTP) -> None:
    sid = await create(http, {"LockDelay": "10s"})
    other = await create(http)
    assert json.loads((await http.put(f"/v1/kv/ld?acquire={sid}", b"x"))[2]) is True
    await http.json("PUT", f"/v1/session/destroy/{sid}")
    assert json.loads((await http.put(f"/v1/kv/ld?acquire={other}", b"y"))[2]) is False
    # plain writes are not delayed
    assert json.loads((await http.put("/v1/kv/ld", b"z"))[2]) is True


async def test_a_null_service_check_is_refused_not_a_crash(http: HTTP) -> None:
    # Go decodes null into the zero ServiceCheck (ID ""), which Consul's server refuses.
    status, _, raw = await http.put(
        "/v1/session/create", json.dumps({"ServiceChecks": [None], "TTL": "15s"})
    )
    assert status == 500 and b"Missing check '' registration" in raw, raw
    assert await http.json("GET", "/v1/session/list") == []
