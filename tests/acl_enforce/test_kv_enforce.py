"""KV, txn and sessions under default deny: what a caller sees for each token."""

from __future__ import annotations

import asyncio
import base64
import json

from consulpy.testing import DevAgent
from tests.acl_enforce.conftest import ANON_TEXT, API


async def test_anonymous_is_denied_with_consuls_text(api: API) -> None:
    body = await api.denied("PUT", "/v1/kv/app/x", "v", token=None)
    assert body == (
        "Permission denied: anonymous token lacks permission 'key:write' on \"app/x\". " + ANON_TEXT
    )
    assert await api.denied("GET", "/v1/kv/app/x", token=None)
    status, _, body = await api.call("GET", "/v1/kv/app/x", token="no-such-secret")
    assert (status, body) == (403, b"ACL not found")
    status, _, _ = await api.call("GET", "/v1/kv/app/x")  # management: a plain 404
    assert status == 404


async def test_exact_rule_allows_and_names_the_accessor_when_denied(api: API) -> None:
    tok = await api.token('key "app/x" { policy = "write" }')
    secret, accessor = tok["SecretID"], tok["AccessorID"]
    assert await api.ok("PUT", "/v1/kv/app/x", "v", token=secret) is True
    assert (await api.ok("GET", "/v1/kv/app/x", token=secret))[0]["Key"] == "app/x"
    body = await api.denied("PUT", "/v1/kv/app/y", "v", token=secret)
    assert body == (
        f"Permission denied: token with AccessorID '{accessor}' lacks permission "
        "'key:write' on \"app/y\""
    )
    status, _, _ = await api.call("GET", "/v1/kv/app/y")
    assert status == 404  # nothing was written


async def test_prefix_exact_precedence_and_deny_on_equal_length(api: API) -> None:
    tok = await api.token(
        'key_prefix "app/" { policy = "write" }\n'
        'key "app/secret" { policy = "deny" }\n'
        'key_prefix "app/ro/" { policy = "read" }\n'
        'key_prefix "tie/" { policy = "write" }\n'
    )
    tie = await api.policy('key_prefix "tie/" { policy = "deny" }')
    both = await api.ok(
        "PUT",
        f"/v1/acl/token/{tok['AccessorID']}",
        {"Policies": [{"ID": tok["Policies"][0]["ID"]}, {"ID": tie["ID"]}]},
    )
    secret = both["SecretID"]
    assert await api.ok("PUT", "/v1/kv/app/a", "1", token=secret) is True
    await api.denied("PUT", "/v1/kv/app/secret", "1", token=secret)
    await api.denied("PUT", "/v1/kv/app/ro/k", "1", token=secret)
    assert await api.ok("PUT", "/v1/kv/app/ro/k", "1") is True
    assert await api.ok("GET", "/v1/kv/app/ro/k", token=secret)
    await api.denied("PUT", "/v1/kv/tie/k", "1", token=secret)  # deny wins on equal length


async def test_list_is_filtered_with_the_header(api: API) -> None:
    for key in ("f/a", "f/b", "f/hidden/c"):
        assert await api.ok("PUT", f"/v1/kv/{key}", "v") is True
    tok = await api.token(
        'key_prefix "f/" { policy = "read" }\nkey_prefix "f/hidden/" { policy = "deny" }'
    )
    status, headers, body = await api.call("GET", "/v1/kv/f/?recurse", token=tok["SecretID"])
    assert status == 200
    assert [e["Key"] for e in json.loads(body)] == ["f/a", "f/b"]
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
    status, headers, body = await api.call("GET", "/v1/kv/f/?keys", token=tok["SecretID"])
    assert json.loads(body) == ["f/a", "f/b"]
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
    # Management sees everything and no header.
    status, headers, body = await api.call("GET", "/v1/kv/f/?recurse")
    assert len(json.loads(body)) == 3
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "false"


async def test_blocking_query_wakes_on_a_hidden_change_but_returns_filtered_data(api: API) -> None:
    assert await api.ok("PUT", "/v1/kv/b/seen", "1") is True
    tok = await api.token('key_prefix "b/seen" { policy = "read" }')
    status, headers, _ = await api.call("GET", "/v1/kv/b/?recurse", token=tok["SecretID"])
    index = int(headers["X-Consul-Index"])
    blocked = asyncio.ensure_future(
        api.call("GET", f"/v1/kv/b/?recurse&index={index}&wait=20s", token=tok["SecretID"])
    )
    assert await api.ok("PUT", "/v1/kv/b/hidden", "2") is True
    status, headers, body = await asyncio.wait_for(blocked, 15)
    assert status == 200 and int(headers["X-Consul-Index"]) > index
    assert [e["Key"] for e in json.loads(body)] == ["b/seen"]
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"


async def test_txn_with_one_forbidden_op_is_rejected_whole(api: API) -> None:
    tok = await api.token('key_prefix "t/" { policy = "write" }')
    ops = [
        {"KV": {"Verb": "set", "Key": "t/ok", "Value": base64.b64encode(b"1").decode()}},
        {"KV": {"Verb": "set", "Key": "other/no", "Value": base64.b64encode(b"1").decode()}},
    ]
    body = await api.denied("PUT", "/v1/txn", ops, token=tok["SecretID"])
    assert "'key:write' on \"other/no\"" in body
    for key in ("t/ok", "other/no"):
        status, _, _ = await api.call("GET", f"/v1/kv/{key}")
        assert status == 404
    assert (await api.ok("PUT", "/v1/txn", ops[:1], token=tok["SecretID"]))["Errors"] is None


async def test_recursive_delete_needs_write_with_no_deny_below(api: API) -> None:
    for key in ("d/a", "d/keep/b"):
        assert await api.ok("PUT", f"/v1/kv/{key}", "v") is True
    tok = await api.token(
        'key_prefix "d/" { policy = "write" }\nkey_prefix "d/keep/" { policy = "read" }'
    )
    await api.denied("DELETE", "/v1/kv/d/?recurse", token=tok["SecretID"])
    assert len(await api.ok("GET", "/v1/kv/d/?recurse")) == 2
    assert await api.ok("DELETE", "/v1/kv/d/a", token=tok["SecretID"]) is True


async def test_policy_change_and_token_delete_take_effect_on_the_next_request(api: API) -> None:
    tok = await api.token('key "c" { policy = "read" }')
    secret = tok["SecretID"]
    await api.denied("PUT", "/v1/kv/c", "v", token=secret)
    policy = tok["Policies"][0]
    await api.ok(
        "PUT",
        f"/v1/acl/policy/{policy['ID']}",
        {"Name": policy["Name"], "Rules": 'key "c" { policy = "write" }'},
    )
    assert await api.ok("PUT", "/v1/kv/c", "v", token=secret) is True
    assert await api.ok("DELETE", f"/v1/acl/token/{tok['AccessorID']}") is True
    status, _, body = await api.call("GET", "/v1/kv/c", token=secret)
    assert (status, body) == (403, b"ACL not found")


async def test_expired_token_is_not_found(api: API, acl_agent: DevAgent) -> None:
    tok = await api.token('key "e" { policy = "write" }', ExpirationTTL="1h")
    assert await api.ok("PUT", "/v1/kv/e", "v", token=tok["SecretID"]) is True
    assert acl_agent.agent is not None
    server = acl_agent.agent.server
    now = server.clock()
    server.clock = lambda: now + 7200  # the token's hour has passed
    status, _, body = await api.call("GET", "/v1/kv/e", token=tok["SecretID"])
    assert (status, body) == (403, b"ACL not found")


async def test_role_and_service_identity_expand(api: API) -> None:
    policy = await api.policy('key "r" { policy = "write" }')
    role = await api.ok(
        "PUT",
        "/v1/acl/role",
        {
            "Name": "r1",
            "Policies": [{"ID": policy["ID"]}],
            "ServiceIdentities": [{"ServiceName": "web"}],
        },
    )
    tok = await api.token(Roles=[{"ID": role["ID"]}])
    assert await api.ok("PUT", "/v1/kv/r", "v", token=tok["SecretID"]) is True
    reg = {"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": 80}}
    # service:write on web from the identity, but node:write on n1 is missing.
    await api.denied("PUT", "/v1/catalog/register", reg, token=tok["SecretID"])
    sid = await api.token(ServiceIdentities=[{"ServiceName": "web"}])
    assert await api.ok("GET", "/v1/catalog/service/web", token=sid["SecretID"]) == []
    # The identity reads every service (as in Consul) but writes only its own.
    assert await api.ok("GET", "/v1/catalog/service/db", token=sid["SecretID"]) == []
    await api.denied("PUT", "/v1/kv/r", "v", token=sid["SecretID"])


async def test_secret_ids_are_hidden_without_acl_write(api: API) -> None:
    reader = await api.token('acl = "read"')
    listed = await api.ok("GET", "/v1/acl/tokens", token=reader["SecretID"])
    mine = [t for t in listed if t["AccessorID"] == reader["AccessorID"]]
    others = [t for t in listed if t["AccessorID"] != reader["AccessorID"]]
    assert mine[0]["SecretID"] == reader["SecretID"]
    assert others and all(t["SecretID"] == "<hidden>" for t in others)
    assert any(t["SecretID"] not in ("<hidden>",) for t in await api.ok("GET", "/v1/acl/tokens"))
