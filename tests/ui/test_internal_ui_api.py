"""/v1/internal/ui/*: Consul's shapes and errors, health counts over instances and node
checks, topology from proxy registrations and intentions, and ACL filtering (a token sees
only what it may read)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.acl_support import acl_config, acl_ready
from tests.conftest import HTTP
from tests.helpers import eventually

MGMT = "6b3c2a4e-0d1f-4c8a-9e3b-5a1c7d9e0f11"


async def register(http: HTTP, body: dict[str, Any], token: str = "") -> None:
    headers = {"X-Consul-Token": token} if token else None
    status, _, out = await http.put("/v1/agent/service/register", json.dumps(body), headers=headers)
    assert status == 200, out


async def get_json(http: HTTP, path: str, token: str = "") -> tuple[int, Any]:
    headers = {"X-Consul-Token": token} if token else None
    status, _, body = await http.get(path, headers=headers)
    return status, (json.loads(body) if status == 200 and body else body)


async def test_services_summaries_count_instances_and_checks(http: HTTP) -> None:
    for i, tags in ((1, ["v1", "b"]), (2, ["a", "v1"])):
        await register(
            http,
            {
                "Name": "web",
                "ID": f"web-{i}",
                "Port": 8080 + i,
                "Tags": tags,
                "Meta": {"external-source": "kubernetes"},
                "Check": {"TTL": "60s", "CheckID": f"web-{i}-ttl"},
            },
        )
    await register(
        http,
        {
            "Name": "web-sidecar-proxy",
            "ID": "web-1-sidecar",
            "Kind": "connect-proxy",
            "Port": 21000,
            "Proxy": {
                "DestinationServiceName": "web",
                "DestinationServiceID": "web-1",
                "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}],
            },
        },
    )
    await register(http, {"Name": "api", "Port": 9090})
    status, _, _ = await http.put("/v1/agent/check/pass/web-1-ttl")
    assert status == 200
    status, rows = await get_json(http, "/v1/internal/ui/services")
    assert status == 200
    by_name = {r["Name"]: r for r in rows}
    assert [r["Name"] for r in rows] == sorted(by_name)
    web = by_name["web"]
    assert "Kind" not in web
    assert web["Tags"] == ["a", "b", "v1"] and web["InstanceCount"] == 2
    assert web["ExternalSources"] == ["kubernetes"] and web["Nodes"] == ["consulpy-test"]
    # serfHealth (the node's) once, web-1-ttl passing, web-2-ttl critical.
    assert (web["ChecksPassing"], web["ChecksWarning"], web["ChecksCritical"]) == (2, 0, 1)
    assert web["ConnectedWithProxy"] is True
    sidecar = by_name["web-sidecar-proxy"]
    assert sidecar["Kind"] == "connect-proxy" and sidecar["InstanceCount"] == 1
    assert by_name["api"]["Tags"] is None and by_name["api"]["ConnectedWithProxy"] is False
    # ?filter selects instances before summarising.
    query = "filter=ServicePort%20%3D%3D%208081"
    status, rows = await get_json(http, f"/v1/internal/ui/services?{query}")
    assert [(r["Name"], r["InstanceCount"]) for r in rows] == [("web", 1)]
    status, rows = await get_json(http, "/v1/internal/ui/services?peer=other")
    assert rows == []


async def test_nodes_and_node(http: HTTP) -> None:
    await register(http, {"Name": "web", "Port": 80})
    status, nodes = await get_json(http, "/v1/internal/ui/nodes")
    assert status == 200 and len(nodes) == 1
    node = nodes[0]
    assert set(node) >= {
        "ID",
        "Node",
        "Address",
        "Datacenter",
        "TaggedAddresses",
        "Meta",
        "Services",
        "Checks",
    }
    assert {s["Service"] for s in node["Services"]} == {"consul", "web"}
    assert any(c["CheckID"] == "serfHealth" for c in node["Checks"])
    status, one = await get_json(http, "/v1/internal/ui/node/consulpy-test")
    assert status == 200 and one["Node"] == "consulpy-test"
    status, _ = await get_json(http, "/v1/internal/ui/node/nope")
    assert status == 404
    status, body = await get_json(http, "/v1/internal/ui/node/")
    assert status == 400 and body == b"Missing node name"


async def test_topology_from_proxies_and_intentions(http: HTTP) -> None:
    await register(
        http,
        {
            "Name": "web",
            "Port": 8080,
            "Connect": {
                "SidecarService": {
                    "Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}
                }
            },
        },
    )
    await register(http, {"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}})
    await register(http, {"Name": "admin", "Port": 7000})
    status, _, body = await http.put(
        "/v1/connect/intentions/exact?source=admin&destination=api", json.dumps({"Action": "deny"})
    )
    assert status == 200, body
    status, topo = await get_json(http, "/v1/internal/ui/service-topology/api?kind=")
    assert status == 200, topo
    assert topo["Upstreams"] == [] and topo["FilteredByACLs"] is False
    down = {d["Name"]: d for d in topo["Downstreams"]}
    assert down["web"]["Source"] == "proxy-registration"
    assert down["web"]["Intention"]["Allowed"] is True
    assert down["web"]["Intention"]["DefaultAllow"] is True
    assert down["admin"]["Source"] == "specific-intention"
    assert down["admin"]["Intention"] == {
        "DefaultAllow": False,
        "Allowed": False,
        "HasPermissions": False,
        "ExternalSource": "",
        "HasExact": True,
    }
    status, topo = await get_json(http, "/v1/internal/ui/service-topology/web?kind=")
    assert [u["Name"] for u in topo["Upstreams"]] == ["api"]
    for path, text in (
        ("/v1/internal/ui/service-topology/web", b"Missing service kind"),
        (
            "/v1/internal/ui/service-topology/web?kind=mesh-gateway",
            b'Unsupported service kind "mesh-gateway"',
        ),
        ("/v1/internal/ui/service-topology/?kind=", b"Missing service name"),
        ("/v1/internal/ui/gateway-services-nodes/", b"Missing gateway name"),
    ):
        status, body = await get_json(http, path)
        assert (status, body) == (400, text), path
    status, rows = await get_json(http, "/v1/internal/ui/gateway-services-nodes/gw")
    assert (status, rows) == (200, [])


async def test_blocking_services_wakes_on_a_change(http: HTTP) -> None:
    import asyncio

    status, headers, _ = await http.get("/v1/internal/ui/services")
    index = int(headers["X-Consul-Index"])
    waiter = asyncio.ensure_future(http.get(f"/v1/internal/ui/services?index={index}&wait=30s"))
    await register(http, {"Name": "late", "Port": 1})
    status, headers, body = await asyncio.wait_for(waiter, 20)
    assert status == 200 and int(headers["X-Consul-Index"]) > index
    assert "late" in {r["Name"] for r in json.loads(body)}


@pytest_asyncio.fixture
async def acl_http() -> AsyncIterator[HTTP]:
    config = acl_config(MGMT)
    config["acl"]["tokens"]["agent"] = MGMT  # the agent syncs its services with it
    async with DevAgent(config=config) as dev:
        await acl_ready(dev, MGMT)
        async with aiohttp.ClientSession() as session:
            yield HTTP(session, dev.url)


async def test_acl_filtering_shows_only_what_the_token_may_read(acl_http: HTTP) -> None:
    http = acl_http
    for name in ("web", "secret"):
        await register(http, {"Name": name, "Port": 80, "Check": {"TTL": "60s"}}, token=MGMT)
    headers = {"X-Consul-Token": MGMT}
    rules = 'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }'
    status, _, body = await http.put(
        "/v1/acl/policy", json.dumps({"Name": "web-read", "Rules": rules}), headers=headers
    )
    assert status == 200, body
    status, _, body = await http.put(
        "/v1/acl/token", json.dumps({"Policies": [{"Name": "web-read"}]}), headers=headers
    )
    secret = json.loads(body)["SecretID"]

    async def synced() -> bool:
        status, rows = await get_json(http, "/v1/internal/ui/services", token=MGMT)
        return status == 200 and {"web", "secret"} <= {r["Name"] for r in rows}

    await eventually(synced, what="services synced to the catalog")
    status, rows = await get_json(http, "/v1/internal/ui/services", token=secret)
    assert status == 200 and [r["Name"] for r in rows] == ["web"]
    # Its counts cover only the checks it may see: serfHealth (node) and web's own.
    assert rows[0]["ChecksPassing"] + rows[0]["ChecksCritical"] == 2
    status, nodes = await get_json(http, "/v1/internal/ui/nodes", token=secret)
    assert {s["Service"] for s in nodes[0]["Services"]} == {"web"}
    assert all(c.get("ServiceName") in ("", "web") for c in nodes[0]["Checks"])
    status, rows = await get_json(http, "/v1/internal/ui/services")  # anonymous: nothing
    assert (status, rows) == (200, [])
    status, nodes = await get_json(http, "/v1/internal/ui/nodes")
    assert (status, nodes) == (200, [])
    status, topo = await get_json(http, "/v1/internal/ui/service-topology/web?kind=", token=secret)
    assert status == 200 and topo["FilteredByACLs"] is True
