"""The operator endpoints and the gateway reads under ACLs (default deny): operator:read for
autopilot configuration/state, usage and /v1/agent/host, operator:write for a configuration
change (refused ones change nothing), service:read on the gateway for gateway-services with
each row kept by service:read on its service."""

from __future__ import annotations

import json

from tests.acl_agent.conftest import token_with
from tests.acl_agent.test_agent_endpoints import ANON_TAIL, NONE, status_of, tok
from tests.acl_state.conftest import ACLHTTP

AUTOPILOT = "/v1/operator/autopilot/configuration"


async def test_operator_read_and_write(api: ACLHTTP) -> None:
    before = await api.ok("GET", AUTOPILOT)
    reads = (AUTOPILOT, "/v1/operator/autopilot/state", "/v1/operator/usage", "/v1/agent/host")
    for path in reads:
        status, text = await status_of(api, "GET", path, NONE)
        want = f"Permission denied: anonymous token lacks permission 'operator:read'. {ANON_TAIL}"
        assert (status, text) == (403, want), path
    reader = (await token_with(api, 'operator = "read"'))["SecretID"]
    for path in reads:
        assert (await status_of(api, "GET", path, tok(reader)))[0] == 200, path
    body = json.dumps({"CleanupDeadServers": False})
    status, text = await status_of(api, "PUT", AUTOPILOT, tok(reader), body)
    assert status == 403 and "lacks permission 'operator:write'" in text
    assert await api.ok("GET", AUTOPILOT) == before
    writer = (await token_with(api, 'operator = "write"'))["SecretID"]
    assert await status_of(api, "PUT", AUTOPILOT, tok(writer), body) == (200, "true\n")
    assert (await api.ok("GET", AUTOPILOT))["CleanupDeadServers"] is False


async def test_gateway_services_need_service_read(api: ACLHTTP) -> None:
    entry = {
        "Kind": "terminating-gateway",
        "Name": "tgw",
        "Services": [{"Name": "db"}, {"Name": "cache"}],
    }
    assert await api.ok("PUT", "/v1/config", entry) is True
    path = "/v1/catalog/gateway-services/tgw"
    status, text = await status_of(api, "GET", path, NONE)
    assert status == 403 and "'service:read' on \"tgw\"" in text
    token = await token_with(
        api, 'service "tgw" { policy = "read" }\nservice "db" { policy = "read" }'
    )
    status, headers, raw = await api.request("GET", path, headers=tok(token["SecretID"]))
    assert status == 200 and [r["Service"]["Name"] for r in json.loads(raw)] == ["db"]
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    rows = await api.ok("GET", path)
    assert sorted(r["Service"]["Name"] for r in rows) == ["cache", "db"]
