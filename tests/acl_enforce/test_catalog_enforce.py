"""Catalog, health, sessions, intentions, config entries, operator and snapshot under default
deny: denials, exact grants and per-item filtering with the header."""

from __future__ import annotations

import json

from tests.acl_enforce.conftest import API

FILTERED = "X-Consul-Results-Filtered-By-ACLs"


async def _register(api: API, node: str, service: str) -> None:
    body = {
        "Node": node,
        "Address": "10.0.0.1",
        "Service": {"Service": service, "ID": service, "Port": 80},
        "Check": {
            "CheckID": f"{service}-chk",
            "Name": "c",
            "ServiceID": service,
            "Status": "passing",
        },
    }
    assert await api.ok("PUT", "/v1/catalog/register", body) is True


async def test_catalog_register_needs_node_and_service_write(api: API) -> None:
    reg = {"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": 80}}
    body = await api.denied("PUT", "/v1/catalog/register", reg, token=None)
    assert "'node:write' on \"n1\"" in body or "'service:write' on \"web\"" in body
    tok = await api.token('node "n1" { policy = "write" }\nservice "web" { policy = "write" }')
    assert await api.ok("PUT", "/v1/catalog/register", reg, token=tok["SecretID"]) is True
    other = dict(reg, Service={"Service": "db", "Port": 1})
    await api.denied("PUT", "/v1/catalog/register", other, token=tok["SecretID"])


async def test_catalog_and_health_lists_are_filtered(api: API) -> None:
    await _register(api, "n1", "web")
    await _register(api, "n2", "db")
    tok = await api.token('node "n1" { policy = "read" }\nservice "web" { policy = "read" }')
    secret = tok["SecretID"]
    status, headers, body = await api.call("GET", "/v1/catalog/nodes", token=secret)
    assert [n["Node"] for n in json.loads(body)] == ["n1"] and headers[FILTERED] == "true"
    status, headers, body = await api.call("GET", "/v1/catalog/services", token=secret)
    assert json.loads(body) == {"web": []} and headers[FILTERED] == "true"
    status, headers, body = await api.call("GET", "/v1/health/state/any", token=secret)
    assert {c["Node"] for c in json.loads(body)} == {"n1"} and headers[FILTERED] == "true"
    rows = await api.ok("GET", "/v1/health/service/web", token=secret)
    assert [r["Node"]["Node"] for r in rows] == ["n1"]
    await api.denied("GET", "/v1/health/service/db", token=secret)
    await api.denied("GET", "/v1/catalog/node/n2", token=secret)
    status, headers, _ = await api.call("GET", "/v1/catalog/nodes")
    assert status == 200 and headers[FILTERED] == "false"  # a token, nothing removed


async def test_sessions_need_session_write_and_lists_are_filtered(api: API, acl_agent) -> None:
    node = acl_agent.agent.node_name
    await api.denied("PUT", "/v1/session/create", {"Node": node}, token=None)
    tok = await api.token(
        f'session "{node}" {{ policy = "write" }}\nnode "{node}" {{ policy = "read" }}'
    )
    sid = (await api.ok("PUT", "/v1/session/create", {"Node": node}, token=tok["SecretID"]))["ID"]
    assert [s["ID"] for s in await api.ok("GET", "/v1/session/list", token=tok["SecretID"])] == [
        sid
    ]
    status, headers, body = await api.call("GET", "/v1/session/list", token=None)
    # Filtered, but an anonymous caller is not told so (Consul).
    assert (status, json.loads(body)) == (200, []) and FILTERED not in headers
    other = await api.token('node_prefix "" { policy = "read" }')
    status, headers, body = await api.call("GET", "/v1/session/list", token=other["SecretID"])
    assert (status, json.loads(body)) == (200, []) and headers[FILTERED] == "true"


async def test_intentions_write_needs_intentions_write_and_reads_are_filtered(api: API) -> None:
    ixn = {"SourceName": "web", "DestinationName": "db", "Action": "allow"}
    await api.denied(
        "PUT", "/v1/connect/intentions/exact?source=web&destination=db", ixn, token=None
    )
    svc_only = await api.token('service "db" { policy = "write" }')  # intentions: read
    body = await api.denied(
        "PUT",
        "/v1/connect/intentions/exact?source=web&destination=db",
        ixn,
        token=svc_only["SecretID"],
    )
    assert "'intention:write' on \"db\"" in body
    writer = await api.token('service "db" { policy = "read" intentions = "write" }')
    assert await api.ok(
        "PUT",
        "/v1/connect/intentions/exact?source=web&destination=db",
        ixn,
        token=writer["SecretID"],
    )
    created = await api.ok("POST", "/v1/connect/intentions", dict(ixn, DestinationName="cache"))
    _status, headers, body = await api.call(
        "GET", "/v1/connect/intentions", token=writer["SecretID"]
    )
    assert [i["DestinationName"] for i in json.loads(body)] == ["db"]
    assert headers[FILTERED] == "true"
    body = await api.denied(
        "GET", f"/v1/connect/intentions/{created['ID']}", token=writer["SecretID"]
    )
    assert body == (
        f"Permission denied: token with AccessorID '{writer['AccessorID']}' lacks permission "
        "'intention:read' on \"cache\""
    )


async def test_config_entries_per_kind(api: API) -> None:
    entry = {"Kind": "service-defaults", "Name": "web", "Protocol": "http"}
    await api.denied("PUT", "/v1/config", entry, token=None)
    tok = await api.token('service "web" { policy = "write" }')
    assert await api.ok("PUT", "/v1/config", entry, token=tok["SecretID"]) is True
    await api.ok("PUT", "/v1/config", dict(entry, Name="db"))
    _status, headers, body = await api.call(
        "GET", "/v1/config/service-defaults", token=tok["SecretID"]
    )
    assert [e["Name"] for e in json.loads(body)] == ["web"] and headers[FILTERED] == "true"
    proxy = {"Kind": "proxy-defaults", "Name": "global"}
    await api.denied("PUT", "/v1/config", proxy, token=tok["SecretID"])
    mesh = await api.token('mesh = "write"')
    assert await api.ok("PUT", "/v1/config", proxy, token=mesh["SecretID"]) is True


async def test_operator_and_snapshot_need_their_rules(api: API) -> None:
    await api.denied("GET", "/v1/operator/raft/configuration", token=None)
    op = await api.token('operator = "read"')
    assert (await api.ok("GET", "/v1/operator/raft/configuration", token=op["SecretID"]))["Servers"]
    body = await api.denied("GET", "/v1/snapshot", token=op["SecretID"])
    assert "'acl:write'" in body or "'acl:read'" in body
    status, _, archive = await api.call("GET", "/v1/snapshot")
    assert status == 200 and archive
    await api.denied("PUT", "/v1/snapshot", archive, token=op["SecretID"])


async def test_prepared_query_needs_query_write_and_execute_is_filtered(api: API) -> None:
    await _register(api, "n1", "web")
    await _register(api, "n2", "web")
    query = {"Name": "web-q", "Service": {"Service": "web"}}
    await api.denied("POST", "/v1/query", query, token=None)
    writer = await api.token('query "web-q" { policy = "write" }')
    qid = (await api.ok("POST", "/v1/query", query, token=writer["SecretID"]))["ID"]
    reader = await api.token(
        'node "n1" { policy = "read" }\nservice "web" { policy = "read" }\n'
        'query "web-q" { policy = "read" }'
    )
    status, headers, body = await api.call(
        "GET", f"/v1/query/{qid}/execute", token=reader["SecretID"]
    )
    assert status == 200, body
    assert [n["Node"]["Node"] for n in json.loads(body)["Nodes"]] == ["n1"]
    assert headers[FILTERED] == "true"
    listed = await api.ok("GET", "/v1/query", token=reader["SecretID"])
    assert [q["Name"] for q in listed] == ["web-q"]
    assert await api.ok("GET", "/v1/query", token=None) == []
