"""ACL state: expiry hides then reaps tokens, snapshots carry the tables, blocking reads wake."""

from __future__ import annotations

import asyncio
import json

import pytest

from consulpy.server import acl_reads
from consulpy.server.endpoints import acl as acl_ep
from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.testing import DevAgent
from tests.acl_state.conftest import ACLHTTP, MGMT


async def test_expired_token_is_absent_then_reaped(
    acl_agent: DevAgent, api: ACLHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert acl_agent.agent is not None and acl_agent.agent.server is not None
    server = acl_agent.agent.server
    t = await api.ok("PUT", "/v1/acl/token", {"ExpirationTTL": "5m"})
    assert t["ExpirationTTL"] == "5m0s" and t["ExpirationTime"] > t["CreateTime"]
    status, _, _ = await api.request(
        "GET", "/v1/acl/token/self", headers={"X-Consul-Token": t["SecretID"]}
    )
    assert status == 200
    status, body = await api.fails(
        "PUT", f"/v1/acl/token/{t['AccessorID']}", {"ExpirationTTL": "10m"}
    )
    assert body == "Cannot change expiration time of an existing token"
    later = server.clock() + 600
    monkeypatch.setattr(server, "clock", lambda: later)
    monkeypatch.setattr(acl_reads, "_now", lambda: later)
    status, _, body = await api.request(
        "GET", "/v1/acl/token/self", headers={"X-Consul-Token": t["SecretID"]}
    )
    assert (status, body) == (403, b"ACL not found")
    assert (await api.fails("GET", f"/v1/acl/token/{t['AccessorID']}"))[0] == 403
    assert t["AccessorID"] not in [x["AccessorID"] for x in await api.ok("GET", "/v1/acl/tokens")]
    assert server.store.acl.tokens.get(t["AccessorID"]) is not None  # hidden, not yet reaped
    await server.leader.reap_acl_tokens()
    assert server.store.acl.tokens.get(t["AccessorID"]) is None


def test_snapshot_round_trip_keeps_acl_tables() -> None:
    store = StateStore()
    fsm = FSM(store)
    policy = {"ID": "p1", "Name": "pol", "Description": "", "Rules": "", "Datacenters": []}
    policy["Hash"] = "h"
    assert not is_error(fsm.apply_command(1, C.acl_policy_set(policy, ts=0)))
    token = acl_ep.management_token("s1", "a1", "d", 0)
    token["Policies"] = [{"ID": "p1"}]
    assert not is_error(fsm.apply_command(2, C.acl_bootstrap(token, 0, ts=0)))
    method = {"Name": "m", "Type": "jwt", "Config": {}}
    assert not is_error(fsm.apply_command(3, C.acl_auth_method_set(method, ts=0)))
    rule = {"ID": "r", "AuthMethod": "m", "BindType": "service", "BindName": "x", "Selector": ""}
    assert not is_error(fsm.apply_command(4, C.acl_binding_rule_set(rule, ts=0)))
    role = {"ID": "ro", "Name": "role", "Policies": [{"ID": "p1"}]}
    assert not is_error(fsm.apply_command(5, C.acl_role_set(role, ts=0)))
    copy = StateStore()
    copy.restore(store.snapshot())
    assert copy.acl.dump() == store.acl.dump()
    assert copy.acl.token_by_secret("s1")["AccessorID"] == "a1"
    assert copy.acl.policies.get_unique("pol")["ID"] == "p1"
    assert copy.acl.bootstrap_index == 2
    # The restored FSM still refuses a second bootstrap and keeps names unique.
    again = FSM(copy).apply_command(6, C.acl_bootstrap(dict(token, AccessorID="a2"), 0, ts=0))
    assert again == {"Error": "ACL bootstrap no longer allowed (reset index: 2)"}
    dup = FSM(copy).apply_command(7, C.acl_policy_set(dict(policy, ID="p2"), ts=0))
    assert dup == {"Error": 'Invalid Policy: A Policy with Name "pol" already exists'}
    assert copy.acl.policies.get("p2") is None and copy.table_index("acl-policies") == 1


def test_fsm_refuses_links_to_missing_policies_atomically() -> None:
    store = StateStore()
    token = acl_ep.management_token("s1", "a1", "d", 0)
    token["Policies"] = [{"ID": "ghost"}]
    result = FSM(store).apply_command(1, C.acl_token_set(token, True, ts=0))
    assert result == {"Error": 'No such ACL policy with ID "ghost"'}
    assert store.acl.tokens.get("a1") is None and store.last_index == 1


async def test_blocking_policy_list_wakes_on_change(api: ACLHTTP) -> None:
    _status, headers, _ = await api.request("GET", "/v1/acl/policies")
    index = int(headers["X-Consul-Index"])

    async def blocked() -> list[str]:
        _status, headers, body = await api.request(
            "GET", f"/v1/acl/policies?index={index}&wait=30s"
        )
        assert int(headers["X-Consul-Index"]) > index
        return [p["Name"] for p in json.loads(body)]

    task = asyncio.ensure_future(blocked())
    await asyncio.sleep(0)
    assert not task.done()
    await api.ok("PUT", "/v1/acl/policy", {"Name": "new-one"})
    names = await asyncio.wait_for(task, 20)
    assert "new-one" in names


async def test_token_via_bearer_and_query(api: ACLHTTP) -> None:
    for headers, path in [
        ({"Authorization": f"Bearer {MGMT}"}, "/v1/acl/token/self"),
        ({}, f"/v1/acl/token/self?token={MGMT}"),
    ]:
        status, _, body = await api.request("GET", path, headers=headers)
        assert status == 200 and json.loads(body)["SecretID"] == MGMT


async def test_list_filter(api: ACLHTTP) -> None:
    await api.ok("PUT", "/v1/acl/policy", {"Name": "filter-me", "Description": "x"})
    got = await api.ok("GET", "/v1/acl/policies?filter=" + 'Description == "x"')
    assert [p["Name"] for p in got] == ["filter-me"]
    status, body = await api.fails("GET", "/v1/acl/tokens?filter=" + "Local ==")
    assert status == 500 and body.startswith("Failed to create boolean expression evaluator")
