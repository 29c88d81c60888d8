"""Blocking queries: wake on the watched key or prefix, not on unrelated writes, and return
the same index at the end of `wait`."""

from __future__ import annotations

import asyncio
import json
import time

from tests.conftest import HTTP


async def index_of(http: HTTP, path: str) -> int:
    return int((await http.get(path))[1]["X-Consul-Index"])


async def test_wakes_promptly_on_a_write_to_the_watched_key(http: HTTP) -> None:
    await http.put("/v1/kv/w/key", b"1")
    idx = await index_of(http, "/v1/kv/w/key")
    started = time.monotonic()
    pending = asyncio.ensure_future(http.get(f"/v1/kv/w/key?index={idx}&wait=30s"))
    await http.put("/v1/kv/w/key", b"2")
    status, headers, body = await asyncio.wait_for(pending, 5)
    assert status == 200 and int(headers["X-Consul-Index"]) > idx
    assert json.loads(body)[0]["Value"] == "Mg=="
    assert time.monotonic() - started < 5


async def test_unrelated_writes_do_not_wake_and_wait_ends_with_same_index(http: HTTP) -> None:
    await http.put("/v1/kv/w/key", b"1")
    idx = await index_of(http, "/v1/kv/w/key")
    pending = asyncio.ensure_future(http.get(f"/v1/kv/w/key?index={idx}&wait=1500ms"))
    for i in range(5):
        await http.put(f"/v1/kv/elsewhere/{i}", b"x")
        await http.put("/v1/kv/w/keyx", b"similar name")
    assert not pending.done()
    status, headers, _ = await asyncio.wait_for(pending, 10)
    assert status == 200 and int(headers["X-Consul-Index"]) == idx


async def test_prefix_watch_wakes_for_new_keys_and_deletes(http: HTTP) -> None:
    await http.put("/v1/kv/svc/a", b"1")
    idx = await index_of(http, "/v1/kv/svc/?recurse")
    pending = asyncio.ensure_future(http.get(f"/v1/kv/svc/?recurse&index={idx}&wait=30s"))
    await http.put("/v1/kv/other", b"x")
    await http.put("/v1/kv/svc/b", b"2")
    _, headers, body = await asyncio.wait_for(pending, 5)
    assert [e["Key"] for e in json.loads(body)] == ["svc/a", "svc/b"]
    idx = int(headers["X-Consul-Index"])
    pending = asyncio.ensure_future(http.get(f"/v1/kv/svc/?keys&index={idx}&wait=30s"))
    await http.delete("/v1/kv/svc/b")
    _, headers, body = await asyncio.wait_for(pending, 5)
    assert json.loads(body) == ["svc/a"] and int(headers["X-Consul-Index"]) > idx


async def test_missing_key_blocks_until_it_appears(http: HTTP) -> None:
    await http.put("/v1/kv/seed", b"1")
    status, headers, _ = await http.get("/v1/kv/later")
    assert status == 404
    idx = int(headers["X-Consul-Index"])
    pending = asyncio.ensure_future(http.get(f"/v1/kv/later?index={idx}&wait=30s"))
    await http.put("/v1/kv/later", b"here")
    status, _, _ = await asyncio.wait_for(pending, 5)
    assert status == 200


async def test_stale_index_returns_immediately(http: HTTP) -> None:
    await http.put("/v1/kv/s", b"1")
    await http.put("/v1/kv/s", b"2")
    status, headers, _ = await asyncio.wait_for(http.get("/v1/kv/s?index=1&wait=30s"), 5)
    assert status == 200 and int(headers["X-Consul-Index"]) > 1


async def test_session_list_blocks_on_sessions_table(http: HTTP) -> None:
    idx = await index_of(http, "/v1/session/list")
    pending = asyncio.ensure_future(http.get(f"/v1/session/list?index={idx}&wait=30s"))
    await http.put("/v1/kv/unrelated", b"x")
    assert not pending.done()
    await http.put("/v1/session/create", "{}")
    status, _, body = await asyncio.wait_for(pending, 5)
    assert status == 200 and len(json.loads(body)) == 1


async def test_go_client_millisecond_wait_format(http: HTTP) -> None:
    await http.put("/v1/kv/m", b"1")
    idx = await index_of(http, "/v1/kv/m")
    started = time.monotonic()
    status, headers, _ = await http.get(f"/v1/kv/m?index={idx}&wait=300ms")
    assert status == 200 and int(headers["X-Consul-Index"]) == idx
    assert time.monotonic() - started >= 0.29
