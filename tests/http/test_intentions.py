"""Intentions and config entries through HTTP: precedence, check, authorize, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import HTTP


async def put_intention(http: HTTP, src: str, dst: str, action: str) -> None:
    status, _, raw = await http.put(
        f"/v1/connect/intentions/exact?source={src}&destination={dst}",
        json.dumps({"Action": action}),
    )
    assert status == 200 and json.loads(raw) is True, raw


async def check(http: HTTP, src: str, dst: str) -> bool:
    return (await http.json("GET", f"/v1/connect/intentions/check?source={src}&destination={dst}"))[
        "Allowed"
    ]


async def authorize(http: HTTP, agent, src: str, dst: str) -> dict:
    roots = await http.json("GET", "/v1/connect/ca/roots")
    uri = f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/{src}"
    status, _, raw = await http.request(
        "POST", "/v1/agent/connect/authorize", json.dumps({"Target": dst, "ClientCertURI": uri})
    )
    assert status == 200, raw
    return json.loads(raw)


# (intentions to create, source, destination, expected decision): precedence decides
PRECEDENCE_CASES = [
    ([("*", "*", "deny")], "web", "db", False),
    ([("*", "*", "deny"), ("web", "*", "allow")], "web", "db", True),
    ([("web", "*", "allow"), ("*", "db", "deny")], "web", "db", False),  # 8 beats 6
    ([("*", "db", "deny"), ("web", "db", "allow")], "web", "db", True),  # 9 beats 8
    ([("*", "db", "allow"), ("web", "db", "deny")], "web", "db", False),
    ([("*", "db", "allow"), ("web", "db", "deny")], "api", "db", True),
    ([("web", "db", "deny")], "web", "other", True),  # default: allow (no ACLs)
    ([("*", "*", "allow"), ("web", "*", "deny")], "web", "db", False),  # 6 beats 5
]


@pytest.mark.parametrize(("intentions", "src", "dst", "allowed"), PRECEDENCE_CASES)
async def test_precedence_through_check_and_authorize(
    http: HTTP, agent, intentions, src, dst, allowed
) -> None:
    for s, d, action in intentions:
        await put_intention(http, s, d, action)
    assert await check(http, src, dst) is allowed
    decision = await authorize(http, agent, src, dst)
    assert decision["Authorized"] is allowed and decision["Reason"]


async def test_intention_views(http: HTTP) -> None:
    await put_intention(http, "web", "db", "allow")
    await put_intention(http, "*", "db", "deny")
    await put_intention(http, "web", "*", "deny")
    got = await http.json("GET", "/v1/connect/intentions/exact?source=web&destination=db")
    assert got["Action"] == "allow" and got["Precedence"] == 9 and got["SourceType"] == "consul"
    listed = await http.json("GET", "/v1/connect/intentions")
    assert [(i["SourceName"], i["DestinationName"]) for i in listed] == [
        ("web", "db"),
        ("*", "db"),
        ("web", "*"),
    ]
    match = await http.json("GET", "/v1/connect/intentions/match?by=destination&name=db")
    assert [(i["SourceName"], i["Precedence"]) for i in match["db"]] == [
        ("web", 9),
        ("*", 8),
        ("web", 6),
    ]
    filtered = await http.json("GET", "/v1/connect/intentions?filter=Action%20%3D%3D%20deny")
    assert len(filtered) == 2
    entry = await http.json("GET", "/v1/config/service-intentions/db")
    assert [s["Name"] for s in entry["Sources"]] == ["web", "*"]
    status, _, _ = await http.delete("/v1/connect/intentions/exact?source=web&destination=db")
    assert status == 200
    assert (await http.get("/v1/connect/intentions/exact?source=web&destination=db"))[0] == 404


async def test_legacy_id_endpoints(http: HTTP) -> None:
    status, _, raw = await http.request(
        "POST",
        "/v1/connect/intentions",
        json.dumps({"SourceName": "web", "DestinationName": "api", "Action": "allow"}),
    )
    assert status == 200, raw
    ixn_id = json.loads(raw)["ID"]
    got = await http.json("GET", f"/v1/connect/intentions/{ixn_id}")
    assert got["ID"] == ixn_id and got["Action"] == "allow" and got["CreatedAt"]
    status, _, raw = await http.request(
        "POST",
        "/v1/connect/intentions",
        json.dumps({"SourceName": "web", "DestinationName": "api", "Action": "deny"}),
    )
    assert status == 400 and b"duplicate intention" in raw
    status, _, raw = await http.put(
        f"/v1/connect/intentions/{ixn_id}",
        json.dumps({"SourceName": "web", "DestinationName": "api", "Action": "deny"}),
    )
    assert status == 200, raw
    assert (await http.json("GET", f"/v1/connect/intentions/{ixn_id}"))["Action"] == "deny"
    assert (await http.delete(f"/v1/connect/intentions/{ixn_id}"))[0] == 200
    assert (await http.get(f"/v1/connect/intentions/{ixn_id}"))[0] == 404


async def test_bad_intentions_change_nothing(http: HTTP, agent) -> None:
    cases = [
        ("/v1/connect/intentions/exact?source=web&destination=db", {"Action": "maybe"}),
        (
            "/v1/connect/intentions/exact?source=web&destination=db",
            {"Action": "allow", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "/x"}}]},
        ),
        ("/v1/connect/intentions/exact?source=we*b&destination=db", {"Action": "allow"}),
        (
            "/v1/connect/intentions/exact?source=web&destination=*",
            {"Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/a"}}]},
        ),
    ]
    for path, body in cases:
        status, _, raw = await http.put(path, json.dumps(body))
        assert status == 400 and raw, (path, body, status, raw)
    assert await http.json("GET", "/v1/connect/intentions") == []
    for body in (
        {"Target": "db", "ClientCertURI": "https://not-spiffe/x"},
        {"ClientCertURI": "spiffe://x.consul/ns/default/dc/dc1/svc/web"},
        {"Target": "db", "ClientCertURI": "spiffe://x.consul/agent/client/dc/dc1/id/1"},
    ):
        status, _, raw = await http.request("POST", "/v1/agent/connect/authorize", json.dumps(body))
        assert status == 400, (body, raw)


async def test_config_entries_crud_cas_and_graph_rules(http: HTTP) -> None:
    status, _, raw = await http.put(
        "/v1/config", json.dumps({"Kind": "service-defaults", "Name": "api", "Protocol": "http"})
    )
    assert status == 200 and json.loads(raw) is True, raw
    entry = await http.json("GET", "/v1/config/service-defaults/api")
    assert entry["Protocol"] == "http" and entry["ModifyIndex"] > 0
    # cas: stale index refused, current accepted, 0 = create only
    stale = await http.json(
        "PUT",
        "/v1/config?cas=1",
        json.dumps({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}),
    )
    assert stale is False
    ok = await http.json(
        "PUT",
        f"/v1/config?cas={entry['ModifyIndex']}",
        json.dumps({"kind": "service-defaults", "name": "api", "protocol": "http2"}),
    )
    assert ok is True
    assert (
        await http.json(
            "PUT",
            "/v1/config?cas=0",
            json.dumps({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"}),
        )
        is False
    )
    # a router needs an http-like protocol: tcp service -> 500 with Consul's text
    status, _, raw = await http.put(
        "/v1/config",
        json.dumps(
            {
                "Kind": "service-router",
                "Name": "tcpsvc",
                "Routes": [
                    {"Match": {"HTTP": {"PathPrefix": "/v2"}}, "Destination": {"Service": "tcpsvc"}}
                ],
            }
        ),
    )
    assert status == 500 and b"does not permit advanced routing" in raw
    assert (await http.get("/v1/config/service-router/tcpsvc"))[0] == 404
    status, _, raw = await http.put(
        "/v1/config",
        json.dumps(
            {
                "Kind": "service-router",
                "Name": "api",
                "Routes": [
                    {"Match": {"HTTP": {"PathPrefix": "/v2"}}, "Destination": {"Service": "api"}}
                ],
            }
        ),
    )
    assert status == 200, raw
    assert [e["Name"] for e in await http.json("GET", "/v1/config/service-router")] == ["api"]
    # bad input: 400, nothing stored
    for body in (
        {"Kind": "nope", "Name": "x"},
        {"Kind": "service-defaults"},
        {"Kind": "proxy-defaults", "Name": "not-global"},
        {"Kind": "service-splitter", "Name": "api", "Splits": [{"Weight": 50, "Service": "api"}]},
        {"Kind": "service-defaults", "Name": "x", "Bogus": 1},
    ):
        status, _, raw = await http.put("/v1/config", json.dumps(body))
        assert status == 400 and raw, (body, raw)
    assert (await http.get("/v1/config/service-defaults/x"))[0] == 404
    status, _, raw = await http.get("/v1/config/service-defaults/missing")
    assert (status, raw) == (404, b'Config entry not found for "service-defaults" / "missing"')
    assert (await http.get("/v1/config/not-a-kind"))[0] == 400
    assert await http.json("DELETE", "/v1/config/service-router/api") == {}
    assert (await http.get("/v1/config/service-router/api"))[0] == 404
