"""Connect.SidecarService expands to a connect-proxy service with Consul's defaults."""

from __future__ import annotations

import json

from tests.conftest import HTTP


async def register(http: HTTP, body: dict) -> None:
    status, _, raw = await http.put("/v1/agent/service/register", json.dumps(body))
    assert status == 200, raw


async def test_sidecar_defaults_and_connect_discovery(http: HTTP) -> None:
    await register(
        http,
        {
            "Name": "web",
            "Port": 8080,
            "Tags": ["v1"],
            "Meta": {"team": "shop"},
            "Connect": {
                "SidecarService": {
                    "Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}
                }
            },
        },
    )
    services = await http.json("GET", "/v1/agent/services")
    assert set(services) == {"web", "web-sidecar-proxy"}
    assert "Connect" not in services["web"]  # SidecarService is not stored on the parent
    proxy = services["web-sidecar-proxy"]
    assert proxy["Kind"] == "connect-proxy" and proxy["Service"] == "web-sidecar-proxy"
    assert proxy["Port"] == 21000
    assert proxy["Tags"] == ["v1"] and proxy["Meta"] == {"team": "shop"}
    p = proxy["Proxy"]
    assert p["DestinationServiceName"] == "web" and p["DestinationServiceID"] == "web"
    assert p["LocalServiceAddress"] == "127.0.0.1" and p["LocalServicePort"] == 8080
    [upstream] = p["Upstreams"]
    assert upstream["DestinationName"] == "api" and upstream["DestinationType"] == "service"
    assert upstream["LocalBindPort"] == 9191
    checks = await http.json("GET", "/v1/agent/checks")
    listening = checks["service:web-sidecar-proxy:1"]
    assert listening["Name"] == "Connect Sidecar Listening" and listening["Type"] == "tcp"
    aliasing = checks["service:web-sidecar-proxy:2"]
    assert aliasing["Name"] == "Connect Sidecar Aliasing web" and aliasing["Type"] == "alias"
    [row] = await http.json("GET", "/v1/catalog/connect/web")
    assert row["ServiceKind"] == "connect-proxy" and row["ServiceID"] == "web-sidecar-proxy"
    [entry] = await http.json("GET", "/v1/health/connect/web")
    assert entry["Service"]["Proxy"]["DestinationServiceName"] == "web"
    assert await http.json("GET", "/v1/catalog/connect/api") == []


async def test_ports_reused_allocated_and_sidecar_removed_with_parent(http: HTTP) -> None:
    sidecar = {"Connect": {"SidecarService": {}}}
    await register(http, {"Name": "a", "Port": 1, **sidecar})
    await register(http, {"Name": "b", "Port": 2, **sidecar})
    services = await http.json("GET", "/v1/agent/services")
    assert services["a-sidecar-proxy"]["Port"] == 21000
    assert services["b-sidecar-proxy"]["Port"] == 21001
    await register(http, {"Name": "a", "Port": 3, **sidecar})  # re-registration keeps it
    services = await http.json("GET", "/v1/agent/services")
    assert services["a-sidecar-proxy"]["Port"] == 21000
    assert services["a-sidecar-proxy"]["Proxy"]["LocalServicePort"] == 3
    await register(http, {"Name": "a", "Port": 3})  # the sidecar goes when the parent drops it
    assert "a-sidecar-proxy" not in await http.json("GET", "/v1/agent/services")
    assert (await http.put("/v1/agent/service/deregister/b"))[0] == 200
    services = await http.json("GET", "/v1/agent/services")
    assert "b-sidecar-proxy" not in services
    assert await http.json("GET", "/v1/catalog/service/b-sidecar-proxy") == []


async def test_connect_native_and_bad_sidecars(http: HTTP) -> None:
    await register(http, {"Name": "native", "Port": 7, "Connect": {"Native": True}})
    [row] = await http.json("GET", "/v1/catalog/connect/native")
    assert row["ServiceID"] == "native" and row["ServiceConnect"] == {"Native": True}
    assert (await http.json("GET", "/v1/agent/services"))["native"]["Connect"] == {"Native": True}
    status, _, raw = await http.put(
        "/v1/agent/service/register",
        json.dumps({"Name": "x", "Connect": {"SidecarService": {"ID": "other"}}}),
    )
    assert status == 400 and b"sidecar_service ID" in raw
    status, _, raw = await http.put(
        "/v1/agent/service/register",
        json.dumps({"Name": "y", "Connect": {"SidecarService": {"Proxy": {"Bogus": 1}}}}),
    )
    assert status == 400 and b'unknown field "Bogus"' in raw
    services = await http.json("GET", "/v1/agent/services")
    assert "x" not in services and "y" not in services
