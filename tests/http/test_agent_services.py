"""/v1/agent services, checks, maintenance and local health, and their sync to the catalog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web

from tests.conftest import HTTP
from tests.helpers import eventually


async def register(http: HTTP, body: dict, query: str = "") -> None:
    status, _, raw = await http.put(f"/v1/agent/service/register{query}", json.dumps(body))
    assert status == 200 and raw == b"", raw


@pytest_asyncio.fixture
async def backend() -> AsyncIterator[dict]:
    """A local HTTP server whose health answer the test controls."""
    state = {"status": 200, "body": "ok"}

    async def health(_req: web.Request) -> web.Response:
        return web.Response(status=state["status"], text=state["body"])

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["url"] = f"http://127.0.0.1:{port}/health"
    yield state
    await runner.cleanup()


async def test_register_is_visible_in_agent_catalog_and_health(http: HTTP, agent) -> None:
    await register(
        http,
        {
            "Name": "web",
            "ID": "web-1",
            "Port": 8080,
            "Tags": ["v1"],
            "Address": "10.0.0.5",
            "Meta": {"team": "a"},
            "Check": {"TTL": "30s"},
        },
    )
    services = await http.json("GET", "/v1/agent/services")
    web1 = services["web-1"]
    assert web1["Service"] == "web" and web1["Port"] == 8080 and web1["Datacenter"] == "dc1"
    assert web1["TaggedAddresses"] == {
        "lan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
        "wan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
    }
    assert "Proxy" not in web1 and "Kind" not in web1
    checks = await http.json("GET", "/v1/agent/checks")
    check = checks["service:web-1"]
    assert check["Name"] == "Service 'web' check" and check["Status"] == "critical"
    assert check["Type"] == "ttl" and check["ServiceName"] == "web"
    # synced to the catalog before the register call returned
    [row] = await http.json("GET", "/v1/catalog/service/web")
    assert row["Node"] == agent.agent.node_name and row["ServiceID"] == "web-1"
    [entry] = await http.json("GET", "/v1/health/service/web")
    assert {c["CheckID"] for c in entry["Checks"]} == {"serfHealth", "service:web-1"}
    assert await http.json("GET", "/v1/health/service/web?passing") == []


async def test_ttl_updates_and_health_endpoints(http: HTTP) -> None:
    await register(http, {"name": "api", "port": 9000, "check": {"ttl": "30s"}})
    status, headers, raw = await http.get("/v1/agent/health/service/id/api")
    assert status == 503 and json.loads(raw)["AggregatedStatus"] == "critical"
    assert headers["X-Consul-Reason"] == "critical"
    assert (await http.put("/v1/agent/check/pass/service:api?note=all%20good"))[0] == 200
    [entry] = await http.json("GET", "/v1/health/service/api?passing")
    check = next(c for c in entry["Checks"] if c["CheckID"] == "service:api")
    assert check["Output"] == "all good"
    assert (await http.get("/v1/agent/health/service/name/api?format=text"))[:3:2] == (
        200,
        b"passing",
    )
    assert (await http.put("/v1/agent/check/warn/service:api"))[0] == 200
    assert (await http.get("/v1/agent/health/service/id/api"))[0] == 429
    status, _, raw = await http.put(
        "/v1/agent/check/update/service:api", json.dumps({"Status": "critical", "Output": "down"})
    )
    assert status == 200
    assert (await http.get("/v1/agent/health/service/name/api"))[0] == 503
    status, _, raw = await http.put(
        "/v1/agent/check/update/service:api", json.dumps({"Status": "fine"})
    )
    assert (status, raw) == (400, b"Invalid check status: 'fine'")
    status, _, raw = await http.put("/v1/agent/check/pass/nope")
    assert status == 404 and raw.startswith(b'Unknown check ID "nope"')
    status, _, raw = await http.get("/v1/agent/health/service/id/ghost?format=text")
    assert (status, raw) == (404, b"ServiceId ghost not found")
    status, _, raw = await http.get("/v1/agent/health/service/name/ghost")
    assert status == 404 and json.loads(raw) == []


async def test_http_check_drives_catalog_health(http: HTTP, backend, agent) -> None:
    await register(
        http, {"Name": "site", "Port": 80, "Check": {"HTTP": backend["url"], "Interval": "1s"}}
    )

    async def passing() -> bool:
        return len(await http.json("GET", "/v1/health/service/site?passing")) == 1

    await eventually(passing, timeout=10)
    backend["status"] = 500

    async def failing() -> bool:
        return await http.json("GET", "/v1/health/service/site?passing") == []

    await eventually(failing, timeout=10)
    checks = await http.json("GET", "/v1/agent/checks")
    assert checks["service:site"]["Output"].startswith(f"HTTP GET {backend['url']}: 500")


async def test_validation_errors(http: HTTP) -> None:
    cases = [
        ({"Port": 1}, 400, b"Missing service name"),
        ({"Name": "x", "Bogus": 1}, 400, b'Request decode failed: json: unknown field "Bogus"'),
        ({"Name": "x", "Port": "80"}, 400, b"Request decode failed: json: cannot unmarshal"),
        ({"Name": "x", "Address": "0.0.0.0"}, 400, b"Invalid service address"),
        ({"Name": "x", "Meta": {"consul-x": "1"}}, 400, b"Invalid Service Meta: Key prefix"),
        ({"Name": "x", "Meta": {"bad key": "1"}}, 400, b"Invalid Service Meta: Key contains"),
        (
            {"Name": "x", "Weights": {"Passing": 0, "Warning": 1}},
            400,
            b"Invalid Weights: Passing must be greater than 0",
        ),
        (
            {"Name": "x", "Check": {"TTL": "10s", "Interval": "10s", "HTTP": "http://x"}},
            400,
            b"Invalid check: ",
        ),
        (
            {"Name": "x", "Check": {"TTL": "10s", "Status": "fine"}},
            400,
            b"Status for checks must 'passing', 'warning', 'critical'",
        ),
        ({"Name": "x", "Check": {"Args": ["true"], "Interval": "10s"}}, 400, b"Scripts are"),
        ({"Name": "x", "Kind": "connect-proxy", "Port": 1}, 400, b"Validation failed"),
    ]
    for body, status, text in cases:
        got, _, raw = await http.put("/v1/agent/service/register", json.dumps(body))
        assert got == status and raw.startswith(text), (body, got, raw)
    assert await http.json("GET", "/v1/agent/services") == {}


async def test_check_register_and_deregister(http: HTTP) -> None:
    status, _, raw = await http.put("/v1/agent/check/register", json.dumps({"TTL": "5s"}))
    assert (status, raw) == (400, b"Missing check name")
    status, _, raw = await http.put(
        "/v1/agent/check/register", json.dumps({"Name": "c", "TTL": "5s", "Status": "meh"})
    )
    assert (status, raw) == (400, b"Bad check status")
    status, _, raw = await http.put(
        "/v1/agent/check/register", json.dumps({"Name": "c", "TTL": "5s", "ServiceID": "ghost"})
    )
    assert (status, raw) == (404, b'ServiceID "ghost" does not exist')
    status, _, _ = await http.put(
        "/v1/agent/check/register",
        json.dumps(
            {"Name": "mem", "ID": "mem", "TTL": "15s", "Status": "passing", "Notes": "memory"}
        ),
    )
    assert status == 200
    checks = await http.json("GET", "/v1/agent/checks")
    assert checks["mem"]["Status"] == "passing" and checks["mem"]["Notes"] == "memory"
    health = await http.json("GET", "/v1/health/state/passing")
    assert "mem" in {c["CheckID"] for c in health}
    assert (await http.put("/v1/agent/check/deregister/mem"))[0] == 200
    assert "mem" not in await http.json("GET", "/v1/agent/checks")
    assert "mem" not in {c["CheckID"] for c in await http.json("GET", "/v1/health/state/any")}
    status, _, raw = await http.put("/v1/agent/check/deregister/mem")
    assert status == 404


async def test_non_ttl_check_refuses_ttl_update(http: HTTP, backend) -> None:
    await register(http, {"Name": "h", "Check": {"HTTP": backend["url"], "Interval": "10s"}})
    status, _, raw = await http.put("/v1/agent/check/pass/service:h")
    assert (status, raw) == (500, b'CheckID "service:h" does not have associated TTL')


async def test_replace_existing_checks(http: HTTP) -> None:
    await register(
        http,
        {
            "Name": "r",
            "Checks": [
                {"CheckID": "a", "TTL": "10s", "Name": "a"},
                {"CheckID": "b", "TTL": "10s", "Name": "b"},
            ],
        },
    )
    await register(http, {"Name": "r", "Checks": [{"CheckID": "a", "TTL": "10s", "Name": "a"}]})
    assert {"a", "b"} <= set(await http.json("GET", "/v1/agent/checks"))
    await register(
        http,
        {"Name": "r", "Checks": [{"CheckID": "a", "TTL": "10s", "Name": "a"}]},
        "?replace-existing-checks=true",
    )
    checks = await http.json("GET", "/v1/agent/checks")
    assert "a" in checks and "b" not in checks
    assert "b" not in {c["CheckID"] for c in await http.json("GET", "/v1/health/checks/r")}


async def test_deregister_and_maintenance(http: HTTP, agent) -> None:
    await register(http, {"Name": "m", "Check": {"TTL": "10s", "Status": "passing"}})
    status, _, raw = await http.put("/v1/agent/service/maintenance/m?enable=true&reason=deploy")
    assert status == 200
    checks = await http.json("GET", "/v1/agent/checks")
    maint = checks["_service_maintenance:m"]
    assert maint["Status"] == "critical" and maint["Notes"] == "deploy"
    assert await http.json("GET", "/v1/health/service/m?passing") == []
    status, _, raw = await http.get("/v1/agent/health/service/id/m?format=text")
    assert (status, raw) == (503, b"maintenance")
    await http.put("/v1/agent/service/maintenance/m?enable=false")
    assert len(await http.json("GET", "/v1/health/service/m?passing")) == 1
    assert (await http.put("/v1/agent/maintenance"))[:3:2] == (400, b"Missing value for enable")
    assert (await http.put("/v1/agent/maintenance?enable=maybe"))[:3:2] == (
        400,
        b'Invalid value for enable: "maybe"',
    )
    assert (await http.put("/v1/agent/maintenance?enable=true"))[0] == 200
    node = await http.json("GET", f"/v1/health/node/{agent.agent.node_name}")
    [maint] = [c for c in node if c["CheckID"] == "_node_maintenance"]
    assert maint["Notes"].startswith("Maintenance mode is enabled for this node")
    assert await http.json("GET", "/v1/health/service/m?passing") == []
    await http.put("/v1/agent/maintenance?enable=false")
    status, _, raw = await http.put("/v1/agent/service/deregister/ghost")
    assert status == 404 and raw.startswith(b'Unknown service ID "ghost"')
    assert (await http.put("/v1/agent/service/deregister/m"))[0] == 200
    assert await http.json("GET", "/v1/catalog/service/m") == []
    assert await http.json("GET", "/v1/agent/services") == {}


async def test_agent_service_hash_blocking(http: HTTP) -> None:
    await register(http, {"Name": "hb", "Port": 1})
    status, headers, raw = await http.get("/v1/agent/service/hb")
    body = json.loads(raw)
    digest = headers["X-Consul-ContentHash"]
    assert status == 200 and body["ContentHash"] == digest
    pending = asyncio.ensure_future(http.get(f"/v1/agent/service/hb?hash={digest}&wait=30s"))
    await register(http, {"Name": "other", "Port": 2})
    await register(http, {"Name": "hb", "Port": 2})
    _, headers, raw = await asyncio.wait_for(pending, 10)
    assert json.loads(raw)["Port"] == 2 and headers["X-Consul-ContentHash"] != digest
    status, _, raw = await http.get("/v1/agent/service/ghost")
    assert (status, raw) == (404, b"unknown service ID: ghost")


async def test_anti_entropy_repairs_drift(http: HTTP, agent) -> None:
    await register(http, {"Name": "ae", "Port": 5})
    node = agent.agent.node_name
    # someone removes our service behind the agent's back, and adds a foreign one
    await http.put("/v1/catalog/deregister", json.dumps({"Node": node, "ServiceID": "ae"}))
    await http.put(
        "/v1/catalog/register",
        json.dumps({"Node": node, "Address": "127.0.0.1", "Service": {"Service": "intruder"}}),
    )
    agent.agent.sync.trigger(full=True)

    async def repaired() -> bool:
        services = (await http.json("GET", f"/v1/catalog/node/{node}"))["Services"]
        return "ae" in services and "intruder" not in services

    await eventually(repaired, timeout=10)


async def test_enable_tag_override_keeps_catalog_tags(http: HTTP, agent) -> None:
    await register(http, {"Name": "eto", "Tags": ["a"], "EnableTagOverride": True})
    node = agent.agent.node_name
    await http.put(
        "/v1/catalog/register",
        json.dumps(
            {
                "Node": node,
                "Address": agent.agent.advertise_addr,
                "SkipNodeUpdate": True,
                "Service": {"Service": "eto", "Tags": ["from-catalog"], "EnableTagOverride": True},
            }
        ),
    )
    agent.agent.sync.trigger(full=True)

    async def adopted() -> bool:
        return (await http.json("GET", "/v1/agent/services"))["eto"]["Tags"] == ["from-catalog"]

    await eventually(adopted, timeout=10)
    [row] = await http.json("GET", "/v1/catalog/service/eto")
    assert row["ServiceTags"] == ["from-catalog"]


async def test_deregister_critical_service_after(http: HTTP, agent) -> None:
    checks = agent.agent.checks
    checks.reaper.min_after = 0.2  # Consul's floor is one minute; shrink it for the test
    await register(
        http,
        {
            "Name": "keeper",
            "Check": {"TTL": "30s", "Status": "passing", "DeregisterCriticalServiceAfter": "1ms"},
        },
    )
    await register(
        http, {"Name": "doomed", "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "1ms"}}
    )

    async def reaped() -> bool:
        await checks.reap()  # what the agent's 30 s reap loop does
        return "doomed" not in await http.json("GET", "/v1/agent/services")

    await eventually(reaped, timeout=10)
    assert await http.json("GET", "/v1/catalog/service/doomed") == []
    assert "keeper" in await http.json("GET", "/v1/agent/services")
