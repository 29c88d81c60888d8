"""/v1/discovery-chain/<service>: the compiled chain as a user reads it (GET), with
overrides (POST), its 400/404 answers, blocking queries, and write-time loop rejection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.conftest import HTTP
from tests.connect.chain_scenario import ENTRIES, ROUTES, TARGETS, routes_of, sni
from tests.helpers import eventually


async def write(http: HTTP, entry: dict[str, Any]) -> None:
    status, _, body = await http.put("/v1/config", json.dumps(entry))
    assert status == 200 and json.loads(body) is True, (status, body)


async def chain(http: HTTP, path: str, body: Any = None) -> tuple[dict[str, Any], dict[str, str]]:
    if body is None:
        status, headers, raw = await http.get(path)
    else:
        status, headers, raw = await http.request("POST", path, data=json.dumps(body))
    assert status == 200, (status, raw)
    return json.loads(raw)["Chain"], headers


async def trust_domain(http: HTTP) -> str:
    """The cluster's trust domain, once the leader has initialized the CA (chains need it)."""
    found: list[str] = []

    async def initialized() -> bool:
        found.append((await http.json("GET", "/v1/connect/ca/roots"))["TrustDomain"])
        return bool(found[-1])

    await eventually(initialized, what="the CA is initialized")
    return found[-1]


async def test_default_chain_has_consuls_shape(http: HTTP) -> None:
    td = await trust_domain(http)
    got, headers = await chain(http, "/v1/discovery-chain/web")
    assert got == {
        "ServiceName": "web",
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": "dc1",
        "Default": True,
        "Protocol": "tcp",
        "StartNode": "resolver:web.default.default.dc1",
        "Nodes": {
            "resolver:web.default.default.dc1": {
                "Type": "resolver",
                "Name": "web.default.default.dc1",
                "Resolver": {
                    "Default": True,
                    "ConnectTimeout": "5s",
                    "Target": "web.default.default.dc1",
                },
            }
        },
        "Targets": {
            "web.default.default.dc1": {
                "ID": "web.default.default.dc1",
                "Service": "web",
                "Namespace": "default",
                "Partition": "default",
                "Datacenter": "dc1",
                "MeshGateway": {},
                "Subset": {},
                "TransparentProxy": {},
                "ConnectTimeout": "5s",
                "SNI": f"web.default.dc1.internal.{td}",
                "Name": f"web.default.dc1.internal.{td}",
            }
        },
    }
    assert int(headers["X-Consul-Index"]) >= 1
    assert headers["X-Consul-KnownLeader"] == "true"


async def test_router_nested_splitters_subsets_and_failover(http: HTTP) -> None:
    for entry in ENTRIES:
        await write(http, entry)
    td = await trust_domain(http)
    got, _ = await chain(http, "/v1/discovery-chain/api")
    assert "Default" not in got
    assert got["Protocol"] == "http"
    assert got["StartNode"] == "router:api.default.default"
    assert routes_of(got) == ROUTES
    assert set(got["Targets"]) == TARGETS
    for tid, target in got["Targets"].items():
        assert target["SNI"] == target["Name"] == sni(tid, td)
    v1 = got["Nodes"]["resolver:v1.api.default.default.dc1"]["Resolver"]
    assert v1["ConnectTimeout"] == "3s"
    assert v1["Failover"] == {
        "Targets": ["v2.api.default.default.dc1", "api-backup.default.default.dc1"]
    }
    assert got["Targets"]["v2.api.default.default.dc1"]["Subset"] == {
        "Filter": "Service.Meta.version == 2",
        "OnlyPassing": True,
    }
    # the same chain through every consistency mode, and for another compile datacenter
    for query in ("?stale", "?consistent"):
        again, _ = await chain(http, f"/v1/discovery-chain/api{query}")
        assert again == got
    other, _ = await chain(http, "/v1/discovery-chain/api?compile-dc=dc9")
    assert other["Datacenter"] == "dc9"
    assert "v1.api.default.default.dc9" in other["Targets"]


async def test_post_overrides(http: HTTP) -> None:
    await trust_domain(http)
    for entry in ENTRIES:
        await write(http, entry)
    plain, _ = await chain(http, "/v1/discovery-chain/api", {})
    assert "CustomizationHash" not in plain
    # tcp on an http chain drops the router and splitters
    tcp, _ = await chain(http, "/v1/discovery-chain/api", {"OverrideProtocol": "tcp"})
    assert tcp["Protocol"] == "tcp"
    assert tcp["StartNode"] == "resolver:v1.api.default.default.dc1"
    assert len(tcp["CustomizationHash"]) == 8
    assert all(n["Type"] == "resolver" for n in tcp["Nodes"].values())
    # snake_case spelling, number of nanoseconds, mesh gateway mode
    custom, _ = await chain(
        http,
        "/v1/discovery-chain/api",
        {"override_connect_timeout": 7_000_000_000, "OverrideMeshGateway": {"Mode": "local"}},
    )
    resolver = custom["Nodes"]["resolver:v1.api.default.default.dc1"]["Resolver"]
    assert resolver["ConnectTimeout"] == "7s"
    assert custom["Targets"]["v1.api.default.default.dc1"]["MeshGateway"] == {"Mode": "local"}
    assert custom["CustomizationHash"] != tcp["CustomizationHash"]
    same, _ = await chain(http, "/v1/discovery-chain/api", {"OverrideConnectTimeout": "7s"})
    assert same["Targets"]["v2.api.default.default.dc1"]["ConnectTimeout"] == "7s"


async def test_bad_requests(http: HTTP) -> None:
    await trust_domain(http)
    cases = [
        ("GET", "/v1/discovery-chain/", None, 400, "Missing chain name"),
        ("POST", "/v1/discovery-chain/api", "{", 400, "Request decoding failed: "),
        ("POST", "/v1/discovery-chain/api", {"Foo": 1}, 400, "has invalid keys: Foo"),
        ("POST", "/v1/discovery-chain/api", [], 400, "Request decoding failed: "),
        ("POST", "/v1/discovery-chain/api", {"OverrideProtocol": 5}, 400, "OverrideProtocol"),
        (
            "POST",
            "/v1/discovery-chain/api",
            {"OverrideConnectTimeout": "soon"},
            400,
            "Request decoding failed: 'OverrideConnectTimeout'",
        ),
        (
            "POST",
            "/v1/discovery-chain/api",
            {"OverrideMeshGateway": {"Mode": "sideways"}},
            400,
            "Invalid OverrideMeshGateway.Mode parameter",
        ),
        ("PUT", "/v1/discovery-chain/api", None, 405, "method PUT not allowed"),
        ("GET", "/v1/discovery-chain", None, 404, "Invalid URL path"),
        ("GET", "/v1/discovery-chain/api?dc=dc7", None, 500, "No path to datacenter"),
    ]
    for method, path, body, status, text in cases:
        data = body if isinstance(body, str) or body is None else json.dumps(body)
        got_status, _, raw = await http.request(method, path, data=data)
        assert (got_status, text in raw.decode()) == (status, True), (path, body, raw)
    # nothing above changed anything: still the default chain
    got, _ = await chain(http, "/v1/discovery-chain/api")
    assert got["Default"] is True


async def test_blocking_query_wakes_on_a_config_entry_change(http: HTTP) -> None:
    await trust_domain(http)
    _, headers = await chain(http, "/v1/discovery-chain/api")
    index = int(headers["X-Consul-Index"])
    pending = asyncio.ensure_future(http.get(f"/v1/discovery-chain/api?index={index}&wait=30s"))
    await write(http, {"Kind": "service-resolver", "Name": "api", "ConnectTimeout": "9s"})
    status, headers, raw = await asyncio.wait_for(pending, 20)
    assert status == 200
    assert int(headers["X-Consul-Index"]) > index
    node = json.loads(raw)["Chain"]["Nodes"]["resolver:api.default.default.dc1"]
    assert node["Resolver"]["ConnectTimeout"] == "9s"


async def test_splitter_loop_is_refused_at_write_time_with_consuls_error(http: HTTP) -> None:
    await trust_domain(http)
    await write(http, {"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}})
    await write(
        http,
        {"Kind": "service-splitter", "Name": "a", "Splits": [{"Weight": 100, "Service": "b"}]},
    )
    loop = {"Kind": "service-splitter", "Name": "b", "Splits": [{"Weight": 100, "Service": "a"}]}
    status, _, raw = await http.put("/v1/config", json.dumps(loop))
    assert status == 500
    assert raw.decode().strip() == (
        "detected circular reference: [splitter:a.default.default -> "
        "splitter:b.default.default -> splitter:a.default.default]"
    )
    status, _, _ = await http.get("/v1/config/service-splitter/b")
    assert status == 404  # nothing was stored
    # the chain of a still compiles and reads as before
    got, _ = await chain(http, "/v1/discovery-chain/a")
    assert got["StartNode"] == "splitter:a.default.default"
