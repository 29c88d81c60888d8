"""/v1/catalog/*: registration rules, read shapes, parameters, blocking."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import HTTP


async def register(http: HTTP, body: dict) -> None:
    status, _, raw = await http.put("/v1/catalog/register", json.dumps(body))
    assert status == 200 and json.loads(raw) is True, raw


WEB1 = {
    "Node": "web1",
    "Address": "10.0.0.1",
    "ID": "6c1b2d8e-0c52-4d1e-9a0a-1b9c2f7c3e11",
    "TaggedAddresses": {"lan": "10.0.0.1"},
    "NodeMeta": {"rack": "r1"},
    "Service": {
        "Service": "web",
        "ID": "web-1",
        "Tags": ["v1", "Prod"],
        "Port": 8080,
        "Meta": {"version": "1.0"},
    },
    "Check": {
        "Name": "web alive",
        "CheckID": "web-1-alive",
        "ServiceID": "web-1",
        "Status": "passing",
    },
}
WEB2 = {
    "Node": "web2",
    "Address": "10.0.0.2",
    "NodeMeta": {"rack": "r2"},
    "Service": {"Service": "web", "ID": "web-2", "Tags": ["v2"], "Port": 8081},
    "Checks": [
        {"Name": "web alive", "CheckID": "web-2-alive", "ServiceID": "web-2", "Status": "critical"},
        {"Name": "disk", "CheckID": "disk", "Status": "warning"},
    ],
}


async def test_register_and_read_every_view(http: HTTP, agent) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    nodes = await http.json("GET", "/v1/catalog/nodes")
    assert [n["Node"] for n in nodes] == sorted([agent.agent.node_name, "web1", "web2"])
    web1 = next(n for n in nodes if n["Node"] == "web1")
    assert web1 == {
        "ID": WEB1["ID"],
        "Node": "web1",
        "Address": "10.0.0.1",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "10.0.0.1"},
        "Meta": {"rack": "r1"},
        "CreateIndex": web1["CreateIndex"],
        "ModifyIndex": web1["ModifyIndex"],
    }
    services = await http.json("GET", "/v1/catalog/services")
    assert services == {"consul": [], "web": ["Prod", "v1", "v2"]}
    rows = await http.json("GET", "/v1/catalog/service/web")
    assert [r["ServiceID"] for r in rows] == ["web-1", "web-2"]
    row = rows[0]
    assert row["Node"] == "web1" and row["Address"] == "10.0.0.1"
    assert row["NodeMeta"] == {"rack": "r1"} and row["ServiceMeta"] == {"version": "1.0"}
    assert row["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert row["ServiceProxy"] == {"Mode": "", "MeshGateway": {}, "Expose": {}}
    assert row["ServiceConnect"] == {} and "ServiceTaggedAddresses" not in row
    node = await http.json("GET", "/v1/catalog/node/web1")
    assert node["Node"]["Node"] == "web1" and list(node["Services"]) == ["web-1"]
    svc = node["Services"]["web-1"]
    assert svc["Port"] == 8080 and svc["Tags"] == ["v1", "Prod"] and "Kind" not in svc
    listed = await http.json("GET", "/v1/catalog/node-services/web1")
    assert [s["ID"] for s in listed["Services"]] == ["web-1"]
    assert await http.json("GET", "/v1/catalog/datacenters") == ["dc1"]


async def test_not_found_shapes(http: HTTP) -> None:
    assert await http.json("GET", "/v1/catalog/node/ghost") is None
    assert await http.json("GET", "/v1/catalog/node-services/ghost") == {
        "Node": None,
        "Services": None,
    }
    assert await http.json("GET", "/v1/catalog/service/ghost") == []
    assert (await http.get("/v1/catalog/service/"))[:3:2] == (400, b"Missing service name")
    assert (await http.get("/v1/catalog/node/"))[:3:2] == (400, b"Missing node name")


async def test_tag_and_node_meta_filters(http: HTTP) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    # Consul matches tags case-insensitively, every tag required
    assert [r["ServiceID"] for r in await http.json("GET", "/v1/catalog/service/web?tag=prod")] == [
        "web-1"
    ]
    assert await http.json("GET", "/v1/catalog/service/web?tag=prod&tag=v2") == []
    rows = await http.json("GET", "/v1/catalog/service/web?node-meta=rack:r2")
    assert [r["Node"] for r in rows] == ["web2"]
    nodes = await http.json("GET", "/v1/catalog/nodes?node-meta=rack:r1")
    assert [n["Node"] for n in nodes] == ["web1"]
    assert await http.json("GET", "/v1/catalog/services?node-meta=rack:r2") == {"web": ["v2"]}


async def test_register_validation(http: HTTP) -> None:
    cases = [
        ({"Address": "1.2.3.4"}, 500, b"Must provide node"),
        ({"Node": "n"}, 500, b"Must provide address if SkipNodeUpdate is not set"),
        ({"Node": "n", "Address": "a", "ID": "nope"}, 500, b"Bad node ID"),
        (
            {"Node": "n", "Address": "a", "Service": {"ID": "x"}},
            500,
            b"Must provide service name (Service.Service) when service ID is provided",
        ),
        (
            {"Node": "n", "Address": "a", "Service": {"Service": "s", "Address": "0.0.0.0"}},
            500,
            b"Invalid service address",
        ),
        (
            {"Node": "n", "Address": "a", "Check": {"Name": "c", "ServiceID": "ghost"}},
            500,
            b"Unknown service ID 'ghost' for check ID 'c'",
        ),
        (
            {"Node": "n", "Address": "a", "Check": {"Name": "c", "Node": "other"}},
            500,
            b"Node 'other' for check 'c' doesn't match register request node 'n'",
        ),
        (
            {"Node": "n", "Address": "a", "Service": {"Service": "s", "Port": "80"}},
            400,
            b"Request decode failed: json: cannot unmarshal string",
        ),
        ({"Node": "n", "Address": "a", "Datacenter": "dc9"}, 500, b"No path to datacenter"),
    ]
    for body, status, text in cases:
        got, _, raw = await http.put("/v1/catalog/register", json.dumps(body))
        assert got == status and raw.startswith(text), (body, got, raw)
    assert (await http.put("/v1/catalog/register", "[1]"))[0] == 400
    assert await http.json("GET", "/v1/catalog/node/n") is None


async def test_lenient_keys_and_extra_fields(http: HTTP) -> None:
    # py-consul sends lowercase keys and an extra WriteRequest object
    body = {
        "node": "py",
        "address": "10.1.1.1",
        "service": {"service": "db", "port": 5432, "tags": ["primary"]},
        "WriteRequest": {"Token": ""},
    }
    await register(http, body)
    [row] = await http.json("GET", "/v1/catalog/service/db")
    assert row["ServicePort"] == 5432 and row["ServiceTags"] == ["primary"]
    assert row["ServiceID"] == "db"


async def test_skip_node_update_and_identical_registration(http: HTTP) -> None:
    await register(http, WEB1)
    before = (await http.json("GET", "/v1/catalog/node/web1"))["Node"]
    await register(http, WEB1)
    again = (await http.json("GET", "/v1/catalog/node/web1"))["Node"]
    assert again["ModifyIndex"] == before["ModifyIndex"]
    await register(
        http,
        {
            "Node": "web1",
            "Address": "9.9.9.9",
            "SkipNodeUpdate": True,
            "Service": {"Service": "cache", "Port": 1},
        },
    )
    node = await http.json("GET", "/v1/catalog/node/web1")
    assert node["Node"]["Address"] == "10.0.0.1" and sorted(node["Services"]) == ["cache", "web-1"]


async def test_deregister_levels(http: HTTP) -> None:
    await register(http, WEB2)

    async def dereg(body: dict) -> None:
        status, _, raw = await http.put("/v1/catalog/deregister", json.dumps(body))
        assert status == 200 and json.loads(raw) is True

    await dereg({"Node": "web2", "CheckID": "disk"})
    checks = await http.json("GET", "/v1/health/node/web2")
    assert [c["CheckID"] for c in checks] == ["web-2-alive"]
    await dereg({"Node": "web2", "ServiceID": "web-2"})
    assert await http.json("GET", "/v1/health/node/web2") == []
    assert await http.json("GET", "/v1/catalog/service/web") == []
    await dereg({"Node": "web2"})
    assert await http.json("GET", "/v1/catalog/node/web2") is None
    await dereg({"Node": "never-existed"})
    status, _, raw = await http.put("/v1/catalog/deregister", "{}")
    assert status == 500 and raw == b"Must provide node"


async def test_blocking_on_service_ignores_other_services(http: HTTP) -> None:
    await register(http, WEB1)
    _, headers, _ = await http.get("/v1/catalog/service/web")
    idx = int(headers["X-Consul-Index"])
    assert headers["X-Consul-Effective-Consistency"] == "leader"
    pending = asyncio.ensure_future(http.get(f"/v1/catalog/service/web?index={idx}&wait=30s"))
    await register(
        http, {"Node": "db1", "Address": "10.0.0.9", "Service": {"Service": "db", "Port": 1}}
    )
    assert not pending.done()
    await register(http, WEB2)
    _, headers, body = await asyncio.wait_for(pending, 5)
    assert [r["ServiceID"] for r in json.loads(body)] == ["web-1", "web-2"]
    assert int(headers["X-Consul-Index"]) > idx


async def test_services_blocking_wakes_on_new_service(http: HTTP) -> None:
    _, headers, _ = await http.get("/v1/catalog/services")
    idx = int(headers["X-Consul-Index"])
    pending = asyncio.ensure_future(http.get(f"/v1/catalog/services?index={idx}&wait=30000ms"))
    await http.put("/v1/kv/unrelated", b"1")
    assert not pending.done()
    await register(http, WEB1)
    _, _, body = await asyncio.wait_for(pending, 5)
    assert "web" in json.loads(body)
