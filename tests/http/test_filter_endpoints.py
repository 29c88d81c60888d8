"""?filter= on every endpoint that takes it, and the error for a bad expression."""

from __future__ import annotations

import json

from tests.conftest import HTTP
from tests.http.test_catalog import WEB1, WEB2, register


async def test_filters_on_catalog_and_health(http: HTTP) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    q = "/v1/catalog/nodes?filter=" + "Meta.rack%20%3D%3D%20r2"
    assert [n["Node"] for n in await http.json("GET", q)] == ["web2"]
    rows = await http.json("GET", "/v1/catalog/service/web?filter=ServicePort%20%3D%3D%208081")
    assert [r["ServiceID"] for r in rows] == ["web-2"]
    rows = await http.json("GET", "/v1/catalog/service/web?filter=" + "%22v2%22%20in%20ServiceTags")
    assert [r["ServiceID"] for r in rows] == ["web-2"]
    services = await http.json("GET", "/v1/catalog/services?filter=ServiceName%20%3D%3D%20web")
    assert list(services) == ["web"]
    node = await http.json("GET", "/v1/catalog/node/web1?filter=Port%20%3D%3D%208080")
    assert list(node["Services"]) == ["web-1"]
    entries = await http.json(
        "GET", "/v1/health/service/web?filter=" + "Checks.Status%20%3D%3D%20critical"
    )
    assert [e["Service"]["ID"] for e in entries] == ["web-2"]
    checks = await http.json("GET", "/v1/health/state/any?filter=Status%20%3D%3D%20warning")
    assert [c["CheckID"] for c in checks] == ["disk"]
    checks = await http.json("GET", "/v1/health/node/web2?filter=ServiceID%20is%20empty")
    assert [c["CheckID"] for c in checks] == ["disk"]


async def test_filters_on_agent_endpoints(http: HTTP) -> None:
    for name, port in (("a", 1), ("b", 2)):
        await http.put(
            "/v1/agent/service/register",
            json.dumps(
                {
                    "Name": name,
                    "Port": port,
                    "Meta": {"env": "prod" if port == 1 else "dev"},
                    "Check": {"TTL": "30s"},
                }
            ),
        )
    services = await http.json("GET", "/v1/agent/services?filter=Meta.env%20%3D%3D%20prod")
    assert list(services) == ["a"]
    checks = await http.json("GET", "/v1/agent/checks?filter=ServiceName%20%3D%3D%20b")
    assert list(checks) == ["service:b"]


async def test_bad_filters_are_500_with_the_evaluator_text(http: HTTP) -> None:
    for query in ("Nope%20%3D%3D%201", "Node%20%3D%3D", "Service.Port%20%3D%3D%20a-b"):
        status, _, raw = await http.get(f"/v1/catalog/nodes?filter={query}")
        assert status == 500, query
        assert raw.startswith(b"Failed to create boolean expression evaluator: "), raw
    status, _, raw = await http.get("/v1/agent/services?filter=%28")
    assert status == 500 and raw.startswith(b"Failed to create boolean expression evaluator")
