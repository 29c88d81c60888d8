"""/v1/acl/*: CRUD of every object, Consul's validation texts and status codes, bootstrap."""

from __future__ import annotations

import json
import os

import aiohttp

from consulpy.testing import DevAgent
from tests.acl_state.conftest import ACLHTTP, MGMT, ready
from tests.acl_state.test_acl_jwt import PUB

GM = "00000000-0000-0000-0000-000000000001"
ANON = "00000000-0000-0000-0000-000000000002"
RULES = 'key "a" { policy = "read" }'
CONFIG = {"BoundIssuer": "me", "JWTValidationPubKeys": [PUB]}


async def test_builtins_and_self(api: ACLHTTP) -> None:
    me = await api.ok("GET", "/v1/acl/token/self")
    assert me["SecretID"] == MGMT
    assert me["Policies"] == [{"ID": GM, "Name": "global-management"}]
    assert me["Legacy"] is False and me["Local"] is False
    assert {"Hash", "CreateIndex", "ModifyIndex", "CreateTime"} <= set(me)
    names = [p["Name"] for p in await api.ok("GET", "/v1/acl/policies")]
    assert names == ["global-management", "builtin/global-read-only"]
    anon = await api.ok("GET", f"/v1/acl/token/{ANON}")
    assert anon["SecretID"] == "anonymous"
    status, _, body = await api.request(
        "GET", "/v1/acl/token/self", headers={"X-Consul-Token": "nope"}
    )
    assert (status, body) == (403, b"ACL not found")


async def test_policy_crud_and_rename_shows_on_tokens(api: ACLHTTP) -> None:
    p = await api.ok("PUT", "/v1/acl/policy", {"Name": "kv-a", "Rules": RULES})
    assert p["Rules"] == RULES and p["CreateIndex"] == p["ModifyIndex"]
    assert await api.ok("GET", f"/v1/acl/policy/{p['ID']}") == p
    assert await api.ok("GET", "/v1/acl/policy/name/kv-a") == p
    t = await api.ok("PUT", "/v1/acl/token", {"Policies": [{"Name": "kv-a"}]})
    assert t["Policies"] == [{"ID": p["ID"], "Name": "kv-a"}]
    p2 = await api.ok("PUT", f"/v1/acl/policy/{p['ID']}", {"Name": "kv-b", "Rules": ""})
    assert p2["ModifyIndex"] > p["ModifyIndex"] and p2["CreateIndex"] == p["CreateIndex"]
    t2 = await api.ok("GET", f"/v1/acl/token/{t['AccessorID']}")
    assert t2["Policies"] == [{"ID": p["ID"], "Name": "kv-b"}]
    assert [x["AccessorID"] for x in await api.ok("GET", f"/v1/acl/tokens?policy={p['ID']}")] == [
        t["AccessorID"]
    ]
    assert await api.ok("DELETE", f"/v1/acl/policy/{p['ID']}") is True
    assert "Policies" not in await api.ok("GET", f"/v1/acl/token/{t['AccessorID']}")
    status, body = await api.fails("GET", f"/v1/acl/policy/{p['ID']}")
    assert (status, body) == (404, "Requested policy does not exist: ACL not found")
    status, body = await api.fails("DELETE", f"/v1/acl/policy/{p['ID']}")
    assert status == 404 and body.startswith("Cannot find policy to delete")


async def test_policy_validation(api: ACLHTTP) -> None:
    await api.ok("PUT", "/v1/acl/policy", {"Name": "dup"})
    cases = [
        ({"Name": ""}, 500, "Invalid Policy: no Name is set"),
        ({"Name": "a b"}, 500, "Invalid Policy: invalid Name."),
        ({"Name": "dup"}, 500, 'Invalid Policy: A Policy with Name "dup" already exists'),
        ({"Name": "x", "ID": GM}, 400, "Cannot specify an ID in Policy Creation"),
    ]
    for body, status, text in cases:
        got = await api.fails("PUT", "/v1/acl/policy", body)
        assert got[0] == status and got[1].startswith(text), (body, got)
    gm = await api.ok("GET", f"/v1/acl/policy/{GM}")
    status, body = await api.fails(
        "PUT", f"/v1/acl/policy/{GM}", {"Name": "global-management", "Rules": ""}
    )
    assert "Changing the Rules for the builtin global-management policy is not permitted" in body
    renamed = await api.ok(
        "PUT", f"/v1/acl/policy/{GM}", {"Name": "gm-renamed", "Rules": gm["Rules"]}
    )
    assert renamed["Name"] == "gm-renamed"
    status, body = await api.fails("DELETE", f"/v1/acl/policy/{GM}")
    assert "Delete operation not permitted on the builtin global-management policy" in body
    status, body = await api.fails("PUT", "/v1/acl/policy", b"{nope")
    assert status == 400 and body.startswith("Policy decoding failed")


async def test_token_crud_clone_and_validation(api: ACLHTTP) -> None:
    accessor = "6b4b5ad4-5a8a-4f3e-9a65-05b6a2d6a001"
    secret = "6b4b5ad4-5a8a-4f3e-9a65-05b6a2d6a002"
    t = await api.ok(
        "PUT",
        "/v1/acl/token",
        {
            "AccessorID": accessor,
            "SecretID": secret,
            "Description": "web",
            "ServiceIdentities": [{"ServiceName": "web"}],
            "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}],
        },
    )
    assert (t["AccessorID"], t["SecretID"]) == (accessor, secret)
    assert t["ServiceIdentities"] == [{"ServiceName": "web"}]
    listed = await api.ok("GET", "/v1/acl/tokens?servicename=web")
    assert [x["AccessorID"] for x in listed] == [accessor]
    up = await api.ok("PUT", f"/v1/acl/token/{accessor}", {"Description": "changed"})
    assert up["Description"] == "changed" and up["SecretID"] == secret
    assert "ServiceIdentities" not in up  # an update replaces the links
    clone = await api.ok("PUT", f"/v1/acl/token/{accessor}/clone", {"Description": "copy"})
    assert clone["AccessorID"] != accessor and clone["SecretID"] != secret
    assert clone["Description"] == "copy"
    cases = [
        ({"AccessorID": "nope"}, "Invalid Token: AccessorID is not a valid UUID"),
        ({"AccessorID": accessor}, "Invalid Token: AccessorID is already in use"),
        ({"SecretID": secret}, "Invalid Token: SecretID is already in use"),
        (
            {"AccessorID": "00000000-0000-0000-0000-000000000077"},
            "Invalid Token: UUIDs with the prefix "
            '"00000000-0000-0000-0000-0000000000" are reserved',
        ),
        ({"Policies": [{"Name": "ghost"}]}, 'No such ACL policy with name "ghost"'),
        ({"Roles": [{"ID": accessor}]}, f'No such ACL role with ID "{accessor}"'),
        (
            {"ExpirationTTL": "1h", "ExpirationTime": "2099-01-01T00:00:00Z"},
            "Token Expiration TTL and Expiration Time cannot both be set",
        ),
        ({"ExpirationTTL": "1s"}, "Token Expiration TTL '1s' should be between 1m0s and 24h0m0s"),
        ({"ExpirationTime": "2000-01-01T00:00:00Z"}, "ExpirationTime cannot be in the past"),
        ({"ServiceIdentities": [{}]}, "Service identity is missing the service name field"),
        ({"ServiceIdentities": [{"ServiceName": "Web!"}]}, 'Service identity "Web!" has an'),
    ]
    for body, text in cases:
        status, got = await api.fails("PUT", "/v1/acl/token", body)
        assert status == 500 and got.startswith(text), (body, got)
    status, got = await api.fails("PUT", f"/v1/acl/token/{accessor}", {"SecretID": MGMT})
    assert got == "Changing a tokens SecretID is not permitted"
    status, got = await api.fails("PUT", f"/v1/acl/token/{accessor}", {"Local": True})
    assert got == f"cannot toggle local mode of {accessor}"
    status, got = await api.fails("PUT", f"/v1/acl/token/{accessor}", {"AccessorID": secret})
    assert status == 400
    assert await api.ok("DELETE", f"/v1/acl/token/{accessor}") is True
    status, got = await api.fails("GET", f"/v1/acl/token/{accessor}")
    assert (status, got) == (403, "ACL not found")
    status, got = await api.fails("DELETE", f"/v1/acl/token/{accessor}")
    assert status == 404 and got.startswith("Cannot find token to delete")
    status, got = await api.fails("DELETE", f"/v1/acl/token/{ANON}")
    assert "anonymous token" in got


async def test_roles(api: ACLHTTP) -> None:
    p = await api.ok("PUT", "/v1/acl/policy", {"Name": "pol"})
    r = await api.ok(
        "PUT",
        "/v1/acl/role",
        {
            "Name": "ops",
            "Policies": [{"ID": p["ID"]}],
            "ServiceIdentities": [{"ServiceName": "db"}],
        },
    )
    assert r["Policies"] == [{"ID": p["ID"], "Name": "pol"}]
    assert await api.ok("GET", "/v1/acl/role/name/ops") == r
    t = await api.ok("PUT", "/v1/acl/token", {"Roles": [{"Name": "ops"}]})
    assert t["Roles"] == [{"ID": r["ID"], "Name": "ops"}]
    assert [x["AccessorID"] for x in await api.ok("GET", f"/v1/acl/tokens?role={r['ID']}")] == [
        t["AccessorID"]
    ]
    assert [x["ID"] for x in await api.ok("GET", f"/v1/acl/roles?policy={p['ID']}")] == [r["ID"]]
    status, body = await api.fails("PUT", "/v1/acl/role", {"Name": "ops"})
    assert body == 'Invalid Role: A Role with Name "ops" already exists'
    status, body = await api.fails("PUT", "/v1/acl/role", {"Name": ""})
    assert body == "Invalid Role: no Name is set"
    up = await api.ok("PUT", f"/v1/acl/role/{r['ID']}", {"Name": "ops2"})
    assert up["Name"] == "ops2" and "Policies" not in up
    assert await api.ok("DELETE", f"/v1/acl/role/{r['ID']}") is True
    assert await api.ok("GET", "/v1/acl/roles") == []
    status, body = await api.fails("GET", "/v1/acl/role/name/ops2")
    assert status == 404


async def test_auth_methods_and_binding_rules(api: ACLHTTP) -> None:
    m = await api.ok(
        "PUT",
        "/v1/acl/auth-method",
        {"Name": "jwt1", "Type": "jwt", "Config": CONFIG, "MaxTokenTTL": "1h"},
    )
    assert m["Config"] == CONFIG and m["MaxTokenTTL"] == "1h0m0s"
    assert [x["Name"] for x in await api.ok("GET", "/v1/acl/auth-methods")] == ["jwt1"]
    _, body = await api.fails("PUT", "/v1/acl/auth-method", {"Name": "k", "Type": "kubernetes"})
    assert body.startswith("Invalid Auth Method: Type should be one of")
    rule = await api.ok(
        "PUT",
        "/v1/acl/binding-rule",
        {"AuthMethod": "jwt1", "BindType": "service", "BindName": "web", "Selector": "a == b"},
    )
    assert await api.ok("GET", f"/v1/acl/binding-rule/{rule['ID']}") == rule
    assert [x["ID"] for x in await api.ok("GET", "/v1/acl/binding-rules?authmethod=jwt1")] == [
        rule["ID"]
    ]
    for body, text in [
        ({"AuthMethod": "ghost", "BindType": "service", "BindName": "x"}, "unknown auth method"),
        ({"AuthMethod": "jwt1", "BindType": "bogus", "BindName": "x"}, "unknown BindType"),
        ({"AuthMethod": "jwt1", "BindType": "role", "BindName": ""}, "no BindName is set"),
        (
            {"AuthMethod": "jwt1", "BindType": "role", "BindName": "x", "Selector": "=="},
            "invalid Binding Rule: Selector is invalid",
        ),
    ]:
        _status, got = await api.fails("PUT", "/v1/acl/binding-rule", body)
        assert text in got, (body, got)
    # Deleting the method takes its rules with it.
    assert await api.ok("DELETE", "/v1/acl/auth-method/jwt1") is True
    assert await api.ok("GET", "/v1/acl/binding-rules") == []


async def test_bootstrap_once_and_reset_file(tmp_path) -> None:
    config = {"acl": {"enabled": True}, "data_dir": str(tmp_path)}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        if True:
            api = ACLHTTP(session, dev.url)
            first = await api.ok("PUT", "/v1/acl/bootstrap")
            assert first["ID"] == first["SecretID"]
            assert first["Description"] == "Bootstrap Token (Global Management)"
            assert first["Policies"] == [{"ID": GM, "Name": "global-management"}]
            status, body = await api.fails("PUT", "/v1/acl/bootstrap")
            index = first["CreateIndex"]
            assert (status, body) == (
                403,
                f"Permission denied: ACL bootstrap no longer allowed (reset index: {index})",
            )
            reset = os.path.join(str(tmp_path), "acl-bootstrap-reset")
            with open(reset, "w") as fh:
                fh.write(str(index + 1))  # the wrong index changes nothing
            assert (await api.fails("PUT", "/v1/acl/bootstrap"))[0] == 403
            with open(reset, "w") as fh:
                fh.write(str(index))
            secret = "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"
            again = await api.ok("PUT", "/v1/acl/bootstrap", {"BootstrapSecret": secret})
            assert again["SecretID"] == secret
            assert not os.path.exists(reset)
            assert (await api.fails("PUT", "/v1/acl/bootstrap"))[0] == 403
            # Both bootstrap tokens work.
            for token in (first["SecretID"], secret):
                status, _, _ = await api.request(
                    "GET", "/v1/acl/token/self", headers={"X-Consul-Token": token}
                )
                assert status == 200


async def test_acl_disabled_answers_401(http) -> None:
    for method, path in [
        ("GET", "/v1/acl/policies"),
        ("PUT", "/v1/acl/bootstrap"),
        ("GET", "/v1/acl/token/self"),
        ("PUT", "/v1/agent/token/default"),
    ]:
        status, _, body = await http.request(method, path, data=b"{}")
        assert (status, body) == (401, b"ACL support disabled"), path


async def test_agent_token_persistence(tmp_path) -> None:
    config = {
        "acl": {
            "enabled": True,
            "enable_token_persistence": True,
            "tokens": {"initial_management": MGMT},
        },
        "data_dir": str(tmp_path),
    }
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        await ready(dev)  # the leader writes the management token after the agent starts
        api = ACLHTTP(session, dev.url)
        status, _, body = await api.request(
            "PUT", "/v1/agent/token/agent", json.dumps({"Token": "abc"})
        )
        assert status == 200, body
        status, _, _ = await api.request("PUT", "/v1/agent/token/bogus", json.dumps({}))
        assert status == 404
    with open(os.path.join(str(tmp_path), "acl-tokens.json")) as fh:
        assert json.load(fh) == {"agent": "abc"}
    async with DevAgent(config=config) as dev:
        assert dev.agent is not None
        assert dev.agent.config.acl.tokens["agent"] == "abc"


async def test_policy_rules_are_parsed(api: ACLHTTP) -> None:
    status, body = await api.fails("PUT", "/v1/acl/policy", {"Name": "bad", "Rules": "key {"})
    assert status == 500 and body.startswith("Failed to parse ACL rules"), body
    status, body = await api.fails(
        "PUT", "/v1/acl/policy", {"Name": "bad", "Rules": 'key "a" { policy = "lots" }'}
    )
    assert status == 500 and "Invalid key policy" in body, body
    assert "bad" not in [p["Name"] for p in await api.ok("GET", "/v1/acl/policies")]
