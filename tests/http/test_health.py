"""/v1/health/*: service entries, passing filter, states, node and service checks."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import HTTP
from tests.http.test_catalog import WEB1, WEB2, register


async def test_service_entries_include_node_and_service_checks(http: HTTP) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    entries = await http.json("GET", "/v1/health/service/web")
    assert [e["Service"]["ID"] for e in entries] == ["web-1", "web-2"]
    web2 = entries[1]
    assert web2["Node"]["Node"] == "web2"
    assert sorted(c["CheckID"] for c in web2["Checks"]) == ["disk", "web-2-alive"]
    assert web2["Service"]["Meta"] is None and web2["Service"]["Tags"] == ["v2"]
    check = next(c for c in web2["Checks"] if c["CheckID"] == "web-2-alive")
    assert check["ServiceName"] == "web" and check["ServiceTags"] == ["v2"]


async def test_passing_filter_and_tags(http: HTTP) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    for query in ("passing", "passing=", "passing=true", "passing=1", "passing=T"):
        entries = await http.json("GET", f"/v1/health/service/web?{query}")
        assert [e["Service"]["ID"] for e in entries] == ["web-1"], query
    entries = await http.json("GET", "/v1/health/service/web?passing=false")
    assert len(entries) == 2
    status, _, raw = await http.get("/v1/health/service/web?passing=maybe")
    assert (status, raw) == (400, b"Invalid value for ?passing")
    entries = await http.json("GET", "/v1/health/service/web?tag=V2")
    assert [e["Service"]["ID"] for e in entries] == ["web-2"]


async def test_warning_is_not_passing(http: HTTP) -> None:
    await register(
        http,
        {
            "Node": "n",
            "Address": "1.1.1.1",
            "Service": {"Service": "s"},
            "Check": {"Name": "c", "ServiceID": "s", "Status": "warning"},
        },
    )
    assert await http.json("GET", "/v1/health/service/s?passing") == []


async def test_state_node_and_checks(http: HTTP, agent) -> None:
    await register(http, WEB1)
    await register(http, WEB2)
    critical = await http.json("GET", "/v1/health/state/critical")
    assert [c["CheckID"] for c in critical] == ["web-2-alive"]
    any_state = await http.json("GET", "/v1/health/state/any")
    assert {c["CheckID"] for c in any_state} >= {"serfHealth", "web-1-alive", "disk"}
    assert await http.json("GET", "/v1/health/state/bogus") == []
    node = await http.json("GET", "/v1/health/node/web2")
    assert sorted(c["CheckID"] for c in node) == ["disk", "web-2-alive"]
    checks = await http.json("GET", "/v1/health/checks/web")
    assert sorted(c["CheckID"] for c in checks) == ["web-1-alive", "web-2-alive"]
    me = await http.json("GET", f"/v1/health/node/{agent.agent.node_name}")
    [serf] = me
    assert serf["CheckID"] == "serfHealth" and serf["Name"] == "Serf Health Status"
    assert serf["Output"] == "Agent alive and reachable" and serf["Status"] == "passing"
    assert (await http.get("/v1/health/state/"))[:3:2] == (400, b"Missing check state")


async def test_health_blocking_wakes_on_check_change(http: HTTP) -> None:
    await register(http, WEB2)
    _, headers, _ = await http.get("/v1/health/service/web?passing")
    idx = int(headers["X-Consul-Index"])
    pending = asyncio.ensure_future(http.get(f"/v1/health/service/web?passing&index={idx}"))
    await register(
        http, {"Node": "other", "Address": "1.1.1.1", "Check": {"Name": "x", "Status": "critical"}}
    )
    assert not pending.done()
    await register(
        http,
        {
            "Node": "web2",
            "Address": "10.0.0.2",
            "Checks": [
                {
                    "CheckID": "web-2-alive",
                    "Name": "web alive",
                    "ServiceID": "web-2",
                    "Status": "passing",
                },
                {"CheckID": "disk", "Name": "disk", "Status": "passing"},
            ],
        },
    )
    _, headers, body = await asyncio.wait_for(pending, 5)
    assert [e["Service"]["ID"] for e in json.loads(body)] == ["web-2"]


async def test_session_invalidated_when_its_check_turns_critical(http: HTTP) -> None:
    await register(
        http, {"Node": "n1", "Address": "1.1.1.1", "Check": {"Name": "health", "Status": "passing"}}
    )
    status, _, raw = await http.put(
        "/v1/session/create",
        json.dumps({"Node": "n1", "NodeChecks": ["health"], "LockDelay": "0s"}),
    )
    assert status == 200, raw
    sid = json.loads(raw)["ID"]
    assert json.loads((await http.put(f"/v1/kv/lock?acquire={sid}", b"x"))[2]) is True
    await register(
        http,
        {"Node": "n1", "Address": "1.1.1.1", "Check": {"Name": "health", "Status": "critical"}},
    )
    assert await http.json("GET", f"/v1/session/info/{sid}") == []
    [entry] = await http.json("GET", "/v1/kv/lock")
    assert "Session" not in entry
