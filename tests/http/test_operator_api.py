"""Operator endpoints of a dev agent as a user sees them: the autopilot configuration (seeded
from the agent's `autopilot` block, replaced by PUT, check-and-set), autopilot state, usage,
the Raft configuration's Index, /v1/agent/host; and the gateway reads (gateway-services,
health/ingress) and `?peer=` on catalog and health reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually, eventually_value

AUTOPILOT = "/v1/operator/autopilot/configuration"


@pytest_asyncio.fixture
async def seeded() -> AsyncIterator[HTTP]:
    config = {"autopilot": {"max_trailing_logs": 99, "server_stabilization_time": "3s"}}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        yield HTTP(session, dev.url)


async def _config(http: HTTP) -> dict:
    status, _, raw = await http.get(AUTOPILOT)
    assert status == 200, raw
    return json.loads(raw)


async def test_autopilot_configuration_seeded_then_replaced_with_cas(seeded: HTTP) -> None:
    async def seeded_yet() -> bool:
        return (await seeded.get(AUTOPILOT))[0] == 200

    await eventually(seeded_yet, timeout=10)
    first = await _config(seeded)
    assert first["MaxTrailingLogs"] == 99 and first["ServerStabilizationTime"] == "3s"
    assert first["CleanupDeadServers"] is True and first["LastContactThreshold"] == "200ms"
    assert first["CreateIndex"] == first["ModifyIndex"] > 0
    # A stale cas changes nothing and answers false.
    body = json.dumps({"CleanupDeadServers": False})
    assert await seeded.json("PUT", f"{AUTOPILOT}?cas={first['ModifyIndex'] + 1000}", body) is False
    assert await _config(seeded) == first
    # The body is decoded over Consul's defaults: omitted fields go back to them.
    body = json.dumps({"CleanupDeadServers": False, "LastContactThreshold": 1_500_000_000})
    assert await seeded.json("PUT", AUTOPILOT, body) is True
    second = await _config(seeded)
    assert second["CleanupDeadServers"] is False and second["LastContactThreshold"] == "1.5s"
    assert second["MaxTrailingLogs"] == 250 and second["ServerStabilizationTime"] == "10s"
    assert second["CreateIndex"] == first["CreateIndex"] < second["ModifyIndex"]
    cas = f"{AUTOPILOT}?cas={second['ModifyIndex']}"
    assert await seeded.json("PUT", cas, json.dumps({"MinQuorum": 3})) is True
    assert (await _config(seeded))["MinQuorum"] == 3


async def test_autopilot_configuration_refuses_bad_input(http: HTTP) -> None:
    async def seeded_yet() -> bool:
        return (await http.get(AUTOPILOT))[0] == 200

    await eventually(seeded_yet, timeout=10)
    before = await _config(http)
    cases = [
        ("?cas=x", "{}", 'Error parsing cas value: strconv.ParseUint: parsing "x": invalid syntax'),
        (
            "",
            '{"MaxTrailingLogs": "x"}',
            "Error parsing autopilot config: json: cannot unmarshal "
            "string into Go struct field AutopilotConfiguration.MaxTrailingLogs of type uint64",
        ),
        (
            "",
            '{"ServerStabilizationTime": "soon"}',
            'Error parsing autopilot config: time: invalid duration "soon"',
        ),
        (
            "",
            "[1]",
            "Error parsing autopilot config: json: cannot unmarshal list into Go value "
            "of type api.AutopilotConfiguration",
        ),
        ("", '{"LastContactThreshold": "-1s"}', "LastContactThreshold must not be negative"),
    ]
    for query, body, text in cases:
        status, _, raw = await http.put(AUTOPILOT + query, body)
        assert (status, raw.decode()) == (400, text), body
    assert await _config(http) == before
    assert (await http.request("POST", AUTOPILOT))[0] == 405


async def test_autopilot_state_usage_raft_index_and_host(http: HTTP, agent: DevAgent) -> None:
    state = await http.json("GET", "/v1/operator/autopilot/state")
    (sid,) = state["Servers"]
    assert state["Leader"] == sid and state["Voters"] == [sid]
    assert state["Healthy"] is True and state["OptimisticFailureTolerance"] == 0
    me = state["Servers"][sid]
    assert (me["Name"], me["Status"], me["NodeType"], me["NodeStatus"]) == (
        agent.agent.node_name,
        "leader",
        "voter",
        "alive",
    )
    # Consul's hashicorp/raft answers GetConfiguration without an index.
    assert (await http.json("GET", "/v1/operator/raft/configuration"))["Index"] == 0

    reg = {"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}
    await http.put("/v1/agent/service/register", json.dumps(reg))

    async def counted() -> dict:
        usage = await http.json("GET", "/v1/operator/usage")
        dc = usage["Usage"]["dc1"]
        return dc if dc["ServiceInstances"] == 3 else {}

    dc = await eventually_value(counted, timeout=10)
    assert dc["Services"] == 3 and dc["Nodes"] == 1 and dc["BillableServiceInstances"] == 1
    assert dc["ConnectServiceInstances"]["connect-proxy"] == 1
    status, headers, raw = await http.get("/v1/operator/usage?global&stale")
    usage = json.loads(raw)
    assert status == 200 and usage["KnownLeader"] is True and int(headers["X-Consul-Index"]) > 0
    assert usage["Index"] == int(headers["X-Consul-Index"])

    host = await http.json("GET", "/v1/agent/host")
    assert host["Errors"] is None and host["Memory"]["total"] > 0 and host["CPU"]
    assert host["Host"]["os"] == "linux" and host["Disk"]["path"] == "/"
    assert host["CollectionTime"] > 0


async def test_gateway_services_ingress_health_and_peer(http: HTTP, agent: DevAgent) -> None:
    assert await http.json("GET", "/v1/catalog/gateway-services/gw") == []
    assert await http.json("GET", "/v1/health/ingress/web") == []
    gw = {"Node": "n-gw", "Address": "10.1.1.1", "Service": {"Service": "gw", "Port": 8080}}
    gw["Service"]["Kind"] = "ingress-gateway"
    await http.json("PUT", "/v1/catalog/register", json.dumps(gw))
    web = {"Node": "n-gw", "Address": "10.1.1.1", "Service": {"Service": "web", "Port": 80}}
    web["Service"]["Connect"] = {"Native": True}
    web["Check"] = {"CheckID": "web-alive", "ServiceID": "web", "Name": "alive"}
    await http.json("PUT", "/v1/catalog/register", json.dumps(web))
    entry = {
        "Kind": "ingress-gateway",
        "Name": "gw",
        "Listeners": [
            {"Port": 8080, "Protocol": "http", "Services": [{"Name": "web", "Hosts": ["w.io"]}]}
        ],
    }
    assert await http.json("PUT", "/v1/config", json.dumps(entry)) is True
    [row] = await http.json("GET", "/v1/catalog/gateway-services/gw")
    assert row["Gateway"] == {"Name": "gw"} and row["Service"] == {"Name": "web"}
    assert (row["GatewayKind"], row["Port"], row["Protocol"], row["Hosts"]) == (
        "ingress-gateway",
        8080,
        "http",
        ["w.io"],
    )
    [node] = await http.json("GET", "/v1/health/ingress/web")
    assert node["Service"]["Service"] == "gw" and node["Node"]["Node"] == "n-gw"
    assert await http.json("GET", "/v1/health/ingress/other") == []
    filtered = "/v1/health/ingress/web?filter=" + "Node.Node%20%3D%3D%20%60x%60"
    assert await http.json("GET", filtered) == []
    term = {"Kind": "terminating-gateway", "Name": "tgw", "Services": [{"Name": "db", "SNI": "d"}]}
    assert await http.json("PUT", "/v1/config", json.dumps(term)) is True
    [row] = await http.json("GET", "/v1/catalog/gateway-services/tgw")
    assert (row["GatewayKind"], row["Service"], row["SNI"]) == (
        "terminating-gateway",
        {"Name": "db"},
        "d",
    )
    assert (await http.get("/v1/catalog/gateway-services/"))[0] == 400

    # ?peer: consulpy has no cluster peers, so nothing was imported from any.
    me = agent.agent.node_name
    for path, empty in (
        ("/v1/catalog/service/web", []),
        ("/v1/catalog/connect/web", []),
        ("/v1/catalog/nodes", []),
        ("/v1/catalog/services", {}),
        (f"/v1/catalog/node/{me}", None),
        (f"/v1/catalog/node-services/{me}", {"Node": None, "Services": None}),
        ("/v1/health/service/web", []),
        (f"/v1/health/node/{me}", []),
        ("/v1/health/checks/web", []),
        ("/v1/health/state/any", []),
    ):
        assert await http.json("GET", f"{path}?peer=p1") == empty, path
        assert await http.json("GET", path) != empty, path
