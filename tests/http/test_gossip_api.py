"""Gossip endpoints of one agent: members, join errors, user events, keyring errors."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import HTTP
from tests.helpers import eventually


async def test_event_fire_and_list_with_index_semantics(http: HTTP, agent) -> None:
    status, headers, raw = await http.get("/v1/event/list")
    assert status == 200 and json.loads(raw) == [] and headers["X-Consul-Index"] == "1"
    pending = asyncio.ensure_future(http.get("/v1/event/list?index=1&wait=30s"))
    event = await http.json("PUT", "/v1/event/fire/deploy", b"v1.2.3")
    assert event["Name"] == "deploy" and event["Payload"] == "djEuMi4z" and event["LTime"] == 0
    status, headers, raw = await asyncio.wait_for(pending, 10)
    [got] = json.loads(raw)
    assert got["ID"] == event["ID"] and got["LTime"] >= 1
    index = headers["X-Consul-Index"]
    digits = event["ID"].replace("-", "")
    assert int(index) == int(digits[:16], 16) ^ int(digits[16:], 16)
    # same index, no new event: waits for `wait`
    status, headers, _ = await http.get(f"/v1/event/list?index={index}&wait=200ms")
    assert headers["X-Consul-Index"] == index
    await http.put("/v1/event/fire/other", b"")
    assert [e["Name"] for e in await http.json("GET", "/v1/event/list?name=deploy")] == ["deploy"]
    assert (await http.put("/v1/event/fire/"))[:3:2] == (400, b"Missing name")
    status, _, raw = await http.put("/v1/event/fire/x?tag=a")
    assert (status, raw) == (500, b"Cannot provide tag filter without service filter")


async def test_event_filters_apply_on_receipt(http: HTTP) -> None:
    await http.put("/v1/agent/service/register", json.dumps({"Name": "web", "Tags": ["blue"]}))
    await http.put("/v1/event/fire/for-db?service=db", b"")
    await http.put("/v1/event/fire/for-web?service=web&tag=blue", b"")
    await http.put("/v1/event/fire/for-nobody?node=^nomatch$", b"")

    async def names() -> list[str]:
        return [e["Name"] for e in await http.json("GET", "/v1/event/list")]

    async def arrived() -> bool:
        return "for-web" in await names()

    await eventually(arrived, timeout=10)
    assert await names() == ["for-web"]


async def test_join_failure_and_keyring_without_encryption(http: HTTP) -> None:
    status, _, raw = await http.put("/v1/agent/join/127.0.0.1:1")
    assert status == 500
    status, _, raw = await http.get("/v1/operator/keyring")
    assert status == 500 and b"not enabled" in raw
    status, _, raw = await http.put("/v1/agent/force-leave/")
    assert (status, raw) == (400, b"Missing node name")
    for suffix in ("", "?prune"):
        status, _, raw = await http.put(f"/v1/agent/force-leave/nonexistent-node{suffix}")
        assert (status, raw) == (500, b"agent: No node found with name 'nonexistent-node'")
