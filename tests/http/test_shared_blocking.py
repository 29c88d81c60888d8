"""Identical blocking queries share one wait and one evaluation per wakeup: what each watcher
gets is what it would get alone, a token never sees another token's filtered result, and a
write wakes only the waits that read what it changed (counted through the server's hooks)."""

from __future__ import annotations

import asyncio
import json

from consulpy.server.blocking import SharedWaits
from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually

WATCHERS = 25


def waits(agent: DevAgent) -> SharedWaits:
    server = agent.agent.server
    assert server is not None
    return server.shared_waits


async def register(http: HTTP, status: str) -> None:
    body = {
        "Node": "n1",
        "Address": "127.0.0.2",
        "Service": {"ID": "web1", "Service": "web", "Port": 80},
        "Check": {"CheckID": "web-alive", "ServiceID": "web1", "Status": status},
    }
    status_code, _, text = await http.put("/v1/catalog/register", json.dumps(body))
    assert status_code == 200, text


async def test_identical_watchers_share_one_evaluation_and_get_the_individual_answer(
    agent: DevAgent, http: HTTP
) -> None:
    await register(http, "passing")
    _, headers, _ = await http.get("/v1/health/service/web")
    index = int(headers["X-Consul-Index"])
    shared = waits(agent)
    evaluations, wakeups = shared.evaluations, shared.wakeups
    path = f"/v1/health/service/web?index={index}&wait=60s"
    pending = [asyncio.ensure_future(http.get(path)) for _ in range(WATCHERS)]
    await eventually(lambda: shared.waiting() == WATCHERS, what="all watchers parked")
    assert len(shared) == 1  # one group, one registration in the watch registry

    await register(http, "critical")
    answers = await asyncio.gather(*pending)
    alone = await http.get("/v1/health/service/web")

    assert {a[0] for a in answers} == {200}
    assert {a[2] for a in answers} == {alone[2]}  # byte for byte the individual body
    assert {a[1]["X-Consul-Index"] for a in answers} == {alone[1]["X-Consul-Index"]}
    assert int(alone[1]["X-Consul-Index"]) > index
    entries = json.loads(alone[2])
    assert [c["Status"] for c in entries[0]["Checks"]] == ["critical"]
    # One evaluation to park, one after the single wakeup: not one per watcher.
    assert shared.evaluations - evaluations == 2
    assert shared.wakeups - wakeups == 1
    assert len(shared) == 0


async def test_pretty_and_plain_watchers_each_get_the_individual_encoding(
    agent: DevAgent, http: HTTP
) -> None:
    await register(http, "passing")
    _, headers, _ = await http.get("/v1/health/service/web")
    index = int(headers["X-Consul-Index"])
    shared = waits(agent)
    plain = [
        asyncio.ensure_future(http.get(f"/v1/health/service/web?index={index}")) for _ in range(3)
    ]
    pretty = [
        asyncio.ensure_future(http.get(f"/v1/health/service/web?index={index}&pretty"))
        for _ in range(3)
    ]
    await eventually(lambda: shared.waiting() == 6, what="all watchers parked")
    assert len(shared) == 1  # ?pretty changes the encoding, not the evaluation
    await register(http, "warning")
    plain_bodies = {a[2] for a in await asyncio.gather(*plain)}
    pretty_bodies = {a[2] for a in await asyncio.gather(*pretty)}
    assert plain_bodies == {(await http.get("/v1/health/service/web"))[2]}
    assert pretty_bodies == {(await http.get("/v1/health/service/web?pretty"))[2]}


async def test_a_write_to_one_key_wakes_only_that_keys_watchers(
    agent: DevAgent, http: HTTP
) -> None:
    await http.put("/v1/kv/a", b"1")
    await http.put("/v1/kv/b", b"1")
    _, headers, _ = await http.get("/v1/kv/a")
    index_a = int(headers["X-Consul-Index"])
    _, headers, _ = await http.get("/v1/kv/b")
    index_b = int(headers["X-Consul-Index"])
    shared = waits(agent)
    wakeups = shared.wakeups
    watch_a = [asyncio.ensure_future(http.get(f"/v1/kv/a?index={index_a}")) for _ in range(3)]
    watch_b = [asyncio.ensure_future(http.get(f"/v1/kv/b?index={index_b}")) for _ in range(3)]
    await eventually(lambda: shared.waiting() == 6, what="all watchers parked")
    assert len(shared) == 2

    await http.put("/v1/kv/a", b"2")
    answers = await asyncio.gather(*watch_a)
    assert {json.loads(a[2])[0]["Value"] for a in answers} == {"Mg=="}
    assert shared.wakeups - wakeups == 1  # only a's wait woke
    assert not any(w.done() for w in watch_b)
    assert shared.waiting() == 3

    await http.put("/v1/kv/b", b"3")
    answers = await asyncio.gather(*watch_b)
    assert {json.loads(a[2])[0]["Value"] for a in answers} == {"Mw=="}
