"""A small fuzz of our own over every route of the HTTP app: malformed bodies and parameters
never get a 5xx (nor a dropped connection), and change nothing, neither the replicated state
nor the agent's local services and checks.

Every route comes from the app's router, so a new route is swept without editing this file.
The OpenAPI document and the schemathesis run cover the same ground with generated inputs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import msgpack
import pytest

from consulpy.http.openapi import CONSUL_500_TEXTS
from consulpy.testing import DevAgent
from tests.helpers import eventually

# Routes whose effect is not about their input: leaving the cluster, reloading, streaming logs.
SKIP = {
    "/v1/agent/leave",
    "/v1/agent/reload",
    "/v1/agent/monitor",
    "/v1/agent/metrics/stream",
    "/{tail}",
}
# Routes whose body is raw bytes, not JSON (any body is a valid value).
RAW_BODY = ("/v1/kv/", "/v1/event/fire/", "/v1/snapshot")

# Consul answers these with 500 and clients match the texts (docs/compatibility.md lists
# them); everything else malformed must be a 4xx.
CONSUL_500 = re.compile("|".join(re.escape(text) for text in CONSUL_500_TEXTS))

BODIES: list[bytes] = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'{"Name":NaN}',
    b'{"Name":"x","Port":Infinity}',
    b'{"Name":"x","TTL":1e400}',
    b'{"Name":"x","Meta":{"a":-1e400}}',
    b'{"Name":"s\\ud800","ID":"s\\udfff"}',
    b'[{"KV":{"Verb":"set","Key":"k\\ud800"}}]',
    b'{"Name":"\xff\xfe"}',
    b'{"Name":',
    b"\x00\x01\x02",
    b'{"Name":' + b"9" * 5000 + b"}",
]
QUERIES: list[str] = [
    "index=%C2%B2",
    "index=%D9%A3",
    "wait=%C2%B2s",
    "wait=NaN",
    "wait=1e400s",
    "cas=%C2%B2",
    "flags=%EF%BC%91",
    "index=99999999999999999999999999",
    "max_stale=%C2%B2s",
    "filter=%00",
]


def _concrete(path: str) -> str:
    # Every placeholder gets a name that does not exist: reads 404, writes need a body.
    return re.sub(r"\{[^}]*\}", "zz-fuzz", path)


def _routes(agent: DevAgent) -> list[str]:
    app = agent.runtime.http._runner.app  # type: ignore[union-attr]
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if template and template not in SKIP:
            out.append(_concrete(template))
    return sorted(set(out))


async def _snapshot(session: aiohttp.ClientSession, agent: DevAgent) -> tuple[Any, Any]:
    async with session.get(agent.url + "/v1/agent/services") as resp:
        services = await resp.json()
    async with session.get(agent.url + "/v1/agent/checks") as resp:
        checks = {
            k: {f: v[f] for f in ("CheckID", "Status")} for k, v in (await resp.json()).items()
        }
    return services, checks


def _doc(agent: DevAgent) -> dict[str, Any]:
    assert agent.agent is not None and agent.agent.server is not None
    doc = msgpack.unpackb(agent.agent.server.store.snapshot(), raw=False, strict_map_key=False)
    doc.pop("indexes")
    doc.pop("last_index")
    # GET /v1/agent/connect/ca/leaf/<name> signs a certificate, whatever the query: the CA's
    # serial counter moves (as in Consul). Nothing else may.
    doc["connect"].pop("ca_serial")
    return doc


def _diff(a: Any, b: Any, path: str = "") -> str:
    """Where two snapshot documents differ (first few places), for the failure message."""
    if isinstance(a, dict) and isinstance(b, dict):
        return "; ".join(
            d
            for k in sorted(set(a) | set(b), key=str)
            if (d := _diff(a.get(k), b.get(k), f"{path}.{k}"))
        )[:2000]
    if a != b:
        return f"{path}: {a!r:.300} -> {b!r:.300}"
    return ""


@pytest.fixture
async def quiet(agent: DevAgent) -> DevAgent:
    assert agent.agent is not None and agent.agent.server is not None
    store = agent.agent.server.store
    local_agent = agent.agent

    def ready() -> bool:
        row = store.catalog.node(agent.config.node_name)
        return (
            bool(store.connect.ca_roots)
            and store.catalog.check(agent.config.node_name, "serfHealth") is not None
            and row is not None
            and row.get("Meta") == local_agent.node_meta()
        )

    await eventually(ready, what="start-up writes")
    return agent


async def test_malformed_input_on_every_route_is_never_5xx_and_changes_nothing(
    quiet: DevAgent,
) -> None:
    agent = quiet
    routes = _routes(agent)
    assert len(routes) > 80, routes
    failures: list[str] = []
    count = 0
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        before = await _snapshot(session, agent)
        before_doc = _doc(agent)

        async def send(method: str, url: str, body: bytes | None) -> None:
            nonlocal count
            count += 1
            try:
                async with session.request(method, agent.url + url, data=body) as resp:
                    text = await resp.text(errors="replace")
                    if resp.status >= 500 and not CONSUL_500.match(text):
                        failures.append(f"{method} {url} {body!r:.60}: {resp.status} {text:.200}")
            except aiohttp.ClientError as exc:
                failures.append(f"{method} {url} {body!r:.60}: connection {exc!r}")

        for path in routes:
            for query in QUERIES:
                await send("GET", f"{path}?{query}", None)
            if path.startswith(RAW_BODY):
                for query in ("cas=%C2%B2", "flags=%C2%B2", "acquire=%00"):
                    await send("PUT", f"{path}?{query}", b"x")
                continue
            for body in BODIES:
                for method in ("PUT", "POST"):
                    await send(method, path, body)
        after = await _snapshot(session, agent)
    assert not failures, f"{len(failures)} of {count} requests failed:\n" + "\n".join(failures[:40])
    assert after == before, "the agent's local state changed"
    after_doc = _doc(agent)
    if after_doc != before_doc:
        pytest.fail("the replicated state changed: " + _diff(before_doc, after_doc))
    print(json.dumps({"requests": count, "routes": len(routes)}))
