"""The agent's local endpoints authorize the caller with Consul's rules and 403 texts, and
filter what a token may not see."""

from __future__ import annotations

import json

import aiohttp

from consulpy.testing import DevAgent
from tests.acl_agent.conftest import RECOVERY, token_with
from tests.acl_state.conftest import ACLHTTP, MGMT

ANON_TAIL = "The anonymous token is used implicitly when a request does not specify a token."
NONE: dict[str, str] = {}


def tok(secret: str) -> dict[str, str]:
    return {"X-Consul-Token": secret}


async def status_of(api: ACLHTTP, method: str, path: str, headers, data=None) -> tuple[int, str]:
    status, _, body = await api.request(method, path, data=data, headers=headers)
    return status, body.decode()


async def test_anonymous_is_denied_on_each_family(api: ACLHTTP) -> None:
    await api.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Port": 80})
    await api.ok("PUT", "/v1/agent/check/register", {"Name": "t", "CheckID": "t", "TTL": "60s"})
    cases = [
        ("GET", "/v1/agent/self", None, "agent:read", "n1"),
        ("PUT", "/v1/agent/reload", None, "agent:write", "n1"),
        ("PUT", "/v1/agent/leave", None, "agent:write", "n1"),
        ("PUT", "/v1/agent/join/127.0.0.1", None, "agent:write", "n1"),
        ("PUT", "/v1/agent/force-leave/x", None, "operator:write", None),
        ("PUT", "/v1/agent/service/register", {"Name": "db"}, "service:write", "db"),
        ("PUT", "/v1/agent/service/deregister/web", None, "service:write", "web"),
        ("PUT", "/v1/agent/service/maintenance/web?enable=true", None, "service:write", "web"),
        ("PUT", "/v1/agent/maintenance?enable=true", None, "node:write", "n1"),
        ("GET", "/v1/agent/service/web", None, "service:read", "web"),
        ("GET", "/v1/agent/health/service/name/web", None, "service:read", "web"),
        ("PUT", "/v1/agent/check/pass/t", None, "node:write", "n1"),
        ("PUT", "/v1/agent/check/register", {"Name": "u", "TTL": "9s"}, "node:write", "n1"),
        ("PUT", "/v1/agent/check/deregister/t", None, "node:write", "n1"),
        ("GET", "/v1/agent/connect/ca/leaf/web", None, "service:write", "web"),
        ("PUT", "/v1/agent/token/agent", {"Token": "x"}, "acl:write", None),
    ]
    for method, path, body, perm, segment in cases:
        data = json.dumps(body) if body is not None else None
        status, text = await status_of(api, method, path, NONE, data)
        where = f' on "{segment}"' if segment else ""
        want = f"Permission denied: anonymous token lacks permission '{perm}'{where}. {ANON_TAIL}"
        assert (status, text) == (403, want), (method, path)
    # Nothing changed.
    services = await api.ok("GET", "/v1/agent/services")
    assert list(services) == ["web"]
    assert (await api.ok("GET", "/v1/agent/checks"))["t"]["Status"] == "critical"


async def test_unknown_token_is_acl_not_found(api: ACLHTTP) -> None:
    assert await status_of(api, "GET", "/v1/agent/self", tok("nope")) == (403, "ACL not found")


async def test_token_with_the_exact_rule_is_allowed(api: ACLHTTP) -> None:
    t = await token_with(api, 'agent "n1" { policy = "read" }')
    assert (await status_of(api, "GET", "/v1/agent/self", tok(t["SecretID"])))[0] == 200
    status, text = await status_of(api, "PUT", "/v1/agent/reload", tok(t["SecretID"]))
    assert status == 403
    assert text == (
        f"Permission denied: token with AccessorID '{t['AccessorID']}' lacks permission "
        "'agent:write' on \"n1\""
    )
    w = await token_with(api, 'service "web" { policy = "write" }')
    reg = json.dumps({"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}})
    path = "/v1/agent/service/register"
    status, text = await status_of(api, "PUT", path, tok(w["SecretID"]), reg)
    assert status == 403 and "'service:write' on \"web-sidecar-proxy\"" in text
    reg = json.dumps({"Name": "web", "Port": 80})
    assert await status_of(api, "PUT", "/v1/agent/service/register", tok(w["SecretID"]), reg) == (
        200,
        "",
    )
    assert (await status_of(api, "GET", "/v1/agent/connect/ca/leaf/web", tok(w["SecretID"])))[
        0
    ] == 200
    status, text = await status_of(api, "GET", "/v1/agent/connect/ca/leaf/db", tok(w["SecretID"]))
    assert status == 403 and "'service:write' on \"db\"" in text
    status, _ = await status_of(api, "PUT", "/v1/agent/service/deregister/web", tok(w["SecretID"]))
    assert status == 200


async def test_lists_are_filtered(api: ACLHTTP) -> None:
    for name in ("web", "db"):
        await api.ok("PUT", "/v1/agent/service/register", {"Name": name, "Port": 1})
        await api.ok(
            "PUT",
            "/v1/agent/check/register",
            {"Name": f"{name}-c", "CheckID": f"{name}-c", "ServiceID": name, "TTL": "60s"},
        )
    await api.ok("PUT", "/v1/agent/check/register", {"Name": "node", "CheckID": "nc", "TTL": "9s"})
    t = await token_with(api, 'service "web" { policy = "read" }')
    status, headers, body = await api.request(
        "GET", "/v1/agent/services", headers=tok(t["SecretID"])
    )
    assert status == 200 and list(json.loads(body)) == ["web"]
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    _, _, body = await api.request("GET", "/v1/agent/checks", headers=tok(t["SecretID"]))
    assert list(json.loads(body)) == ["web-c"]
    status, headers, body = await api.request("GET", "/v1/agent/services", headers=NONE)
    assert status == 200 and json.loads(body) == {}
    assert "X-Consul-Results-Filtered-By-ACLs" not in headers
    _, _, body = await api.request("GET", "/v1/agent/members", headers=tok(t["SecretID"]))
    assert json.loads(body) == []
    n = await token_with(api, 'node "n1" { policy = "read" }')
    _, _, body = await api.request("GET", "/v1/agent/members", headers=tok(n["SecretID"]))
    assert [m["Name"] for m in json.loads(body)] == ["n1"]
    _, _, body = await api.request("GET", "/v1/agent/checks", headers=tok(n["SecretID"]))
    assert list(json.loads(body)) == ["nc"]
    # The management token sees everything.
    assert sorted(await api.ok("GET", "/v1/agent/services")) == ["db", "web"]


async def test_check_of_a_service_needs_service_write(api: ACLHTTP) -> None:
    await api.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Port": 1})
    body = {"Name": "c", "CheckID": "c", "ServiceID": "web", "TTL": "60s"}
    await api.ok("PUT", "/v1/agent/check/register", body)
    n = await token_with(api, 'node "n1" { policy = "write" }')
    status, text = await status_of(api, "PUT", "/v1/agent/check/pass/c", tok(n["SecretID"]))
    assert status == 403 and "'service:write' on \"web\"" in text
    w = await token_with(api, 'service "web" { policy = "write" }')
    assert (await status_of(api, "PUT", "/v1/agent/check/pass/c", tok(w["SecretID"])))[0] == 200
    assert (await api.ok("GET", "/v1/agent/checks"))["c"]["Status"] == "passing"


async def test_connect_authorize_needs_service_write_on_target(api: ACLHTTP) -> None:
    roots = await api.ok("GET", "/v1/agent/connect/ca/roots")
    uri = f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/web"
    body = json.dumps({"Target": "db", "ClientCertURI": uri})
    w = await token_with(api, 'service "web" { policy = "write" }')
    status, text = await status_of(
        api, "POST", "/v1/agent/connect/authorize", tok(w["SecretID"]), body
    )
    assert status == 403 and "'service:write' on \"db\"" in text
    d = await token_with(api, 'service "db" { policy = "write" }')
    status, text = await status_of(
        api, "POST", "/v1/agent/connect/authorize", tok(d["SecretID"]), body
    )
    # No intention: the default decision follows acl.default_policy (deny here).
    assert status == 200 and json.loads(text)["Authorized"] is False


async def test_agent_recovery_token_works_locally(api: ACLHTTP) -> None:
    await api.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Port": 1})
    assert (await status_of(api, "GET", "/v1/agent/self", tok(RECOVERY)))[0] == 200
    status, text = await status_of(api, "GET", "/v1/agent/service/web", tok(RECOVERY))
    assert status == 403 and "agent-recovery-token" in text


async def test_agent_token_change_applies_at_run_time(api: ACLHTTP, acl_agent: DevAgent) -> None:
    assert acl_agent.agent is not None
    await api.ok("PUT", "/v1/agent/token/agent", {"Token": MGMT})
    assert acl_agent.agent.delegate.agent_token == MGMT
    assert acl_agent.agent.member_tags()["acls"] == "1"


async def test_policy_edit_applies_at_once_on_a_server_agent(api: ACLHTTP) -> None:
    t = await token_with(api, 'agent "n1" { policy = "read" }')
    assert (await status_of(api, "GET", "/v1/agent/self", tok(t["SecretID"])))[0] == 200
    policy_id = t["Policies"][0]["ID"]  # type: ignore[index]
    policy = await api.ok("GET", f"/v1/acl/policy/{policy_id}")
    await api.ok("PUT", f"/v1/acl/policy/{policy_id}", {"Name": policy["Name"], "Rules": ""})
    assert (await status_of(api, "GET", "/v1/agent/self", tok(t["SecretID"])))[0] == 403


async def test_bad_registration_is_400_before_any_permission(api: ACLHTTP) -> None:
    status, text = await status_of(api, "PUT", "/v1/agent/service/register", NONE, "{}")
    assert status == 400, text


async def test_monitor_needs_agent_read(acl_agent: DevAgent) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{acl_agent.url}/v1/agent/monitor?loglevel=info"
        async with session.get(url) as resp:  # anonymous
            assert resp.status == 403
            assert "lacks permission 'agent:read'" in await resp.text()


async def test_metrics_need_agent_read(api: ACLHTTP, acl_agent: DevAgent) -> None:
    for path in ("/v1/agent/metrics", "/v1/agent/metrics?format=prometheus"):
        status, text = await status_of(api, "GET", path, NONE)
        assert status == 403 and "lacks permission 'agent:read'" in text, (path, text)
    t = await token_with(api, 'agent "n1" { policy = "read" }')
    status, text = await status_of(api, "GET", "/v1/agent/metrics", tok(t["SecretID"]))
    assert status == 200 and '"Gauges"' in text
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{acl_agent.url}/v1/agent/metrics/stream") as resp,
    ):
        assert resp.status == 403
