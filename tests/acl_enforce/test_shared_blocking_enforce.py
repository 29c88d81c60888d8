"""Blocking queries of different tokens never share a wait (nor its filtered result)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from consulpy.testing import DevAgent
from tests.acl_enforce.conftest import API
from tests.helpers import eventually
from tests.http.test_shared_blocking import waits


async def test_tokens_with_different_views_never_share_a_filtered_result(
    acl_agent: DevAgent, api: API
) -> None:
    await api.ok("PUT", "/v1/kv/a/secret", b"A")
    await api.ok("PUT", "/v1/kv/b/secret", b"B")
    token_a = (await api.token('key_prefix "a/" { policy = "read" }'))["SecretID"]
    token_b = (await api.token('key_prefix "b/" { policy = "read" }'))["SecretID"]
    _, headers, _ = await api.call("GET", "/v1/kv/?recurse", token=token_a)
    index = int(headers["X-Consul-Index"])
    shared = waits(acl_agent)

    def watch(token: str) -> asyncio.Future[Any]:
        return asyncio.ensure_future(api.call("GET", f"/v1/kv/?recurse&index={index}", token=token))

    watchers_a = [watch(token_a) for _ in range(3)]
    watchers_b = [watch(token_b) for _ in range(3)]
    await eventually(lambda: shared.waiting() == 6, what="all watchers parked")
    assert len(shared) == 2  # one shared wait per token, never one for both

    await api.ok("PUT", "/v1/kv/c/other", b"C")  # wakes both; each keeps its own view
    for watchers, token, key in (
        (watchers_a, token_a, "a/secret"),
        (watchers_b, token_b, "b/secret"),
    ):
        answers = await asyncio.gather(*watchers)
        alone = await api.call("GET", "/v1/kv/?recurse", token=token)
        assert {a[2] for a in answers} == {alone[2]}
        assert [e["Key"] for e in json.loads(alone[2])] == [key]
        assert {a[1]["X-Consul-Results-Filtered-By-ACLs"] for a in answers} == {"true"}


async def test_watchers_answered_from_the_shared_pass_keep_their_tokens_view(
    acl_agent: DevAgent, api: API
) -> None:
    """Health watchers are answered straight from the driver's pass (http/fanout.py): still one
    wait per token, and each token's answer is the one it gets alone (filtered, with its own
    X-Consul-Results-Filtered-By-ACLs)."""
    register = {
        "Node": "n1",
        "Address": "127.0.0.2",
        "Service": {"ID": "web1", "Service": "web", "Port": 80},
        "Check": {"CheckID": "web-alive", "ServiceID": "web1", "Status": "passing"},
    }
    await api.ok("PUT", "/v1/catalog/register", register)
    reader = (await api.token('service "web" { policy = "read" } node "n1" { policy = "read" }'))[
        "SecretID"
    ]
    blind = (await api.token('service "web" { policy = "read" }'))["SecretID"]  # no node:read
    _, headers, _ = await api.call("GET", "/v1/health/service/web", token=reader)
    index = int(headers["X-Consul-Index"])
    shared = waits(acl_agent)
    early = shared.early_answers

    def watch(token: str) -> asyncio.Future[Any]:
        path = f"/v1/health/service/web?index={index}&wait=60s"
        return asyncio.ensure_future(api.call("GET", path, token=token))

    readers = [watch(reader) for _ in range(3)]
    blinds = [watch(blind) for _ in range(3)]
    await eventually(lambda: shared.waiting() == 6, what="all watchers parked")
    assert len(shared) == 2

    register["Check"]["Status"] = "critical"
    await api.ok("PUT", "/v1/catalog/register", register)
    for watchers, token, count in ((readers, reader, 1), (blinds, blind, 0)):
        answers = await asyncio.gather(*watchers)
        alone = await api.call("GET", "/v1/health/service/web", token=token)
        assert {a[2] for a in answers} == {alone[2]}
        assert len(json.loads(alone[2])) == count
        for name in ("X-Consul-Index", "X-Consul-Results-Filtered-By-ACLs"):
            assert {a[1].get(name) for a in answers} == {alone[1].get(name)}
    assert shared.early_answers - early == 6
