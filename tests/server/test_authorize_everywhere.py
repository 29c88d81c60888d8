"""Every registered endpoint asks `authorize` (with a typed resource and the real segment),
so the ACL work cannot miss one: each endpoint is called once on an in-process server with
a recording authorizer installed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consulpy.server.endpoints import PUBLIC, REGISTRY, Kind, authz
from consulpy.server.endpoints.authz import Access, Resource
from consulpy.server.query import QueryOptions
from consulpy.server.server import Server

SESSION = "5f2d0c0e-8a7b-4f0e-9d43-7c0f0e3f9a11"
# One call per endpoint: its payload fields. A new endpoint without an entry fails the test.
CALLS: dict[str, dict[str, Any]] = {
    "KVS.Apply": {"verb": "set", "key": "app/config", "value": b"v"},
    "KVS.Get": {"key": "app/config"},
    "KVS.List": {"key": "app/"},
    "KVS.ListKeys": {"key": "app/", "separator": "/"},
    "Session.Apply": {"op": "create", "session": {"Node": "n1", "TTL": "15s"}},
    "Session.Renew": {"id": SESSION},
    "Session.Get": {"id": SESSION},
    "Session.List": {},
    "Session.NodeSessions": {"node": "n1"},
    "Txn.Apply": {"ops": [{"KV": {"Verb": "set", "Key": "txn/k", "Value": b"v"}}]},
    "Txn.Read": {"ops": [{"KV": {"Verb": "get", "Key": "txn/k"}}]},
    "Catalog.Register": {
        "request": {"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web"}}
    },
    "Catalog.Deregister": {"node": "n1", "service_id": "web"},
    "Catalog.ListNodes": {},
    "Catalog.ListServices": {},
    "Catalog.ServiceNodes": {"service": "web"},
    "Catalog.NodeServices": {"node": "n1"},
    "Health.NodeChecks": {"node": "n1"},
    "Health.ServiceChecks": {"service": "web"},
    "Health.ChecksInState": {"state": "any"},
    "Health.ServiceNodes": {"service": "web"},
    "ConfigEntry.Apply": {"entry": {"Kind": "service-defaults", "Name": "web"}},
    "ConfigEntry.Delete": {"kind": "service-defaults", "name": "web"},
    "ConfigEntry.Get": {"kind": "service-defaults", "name": "web"},
    "ConfigEntry.List": {"kind": "service-defaults"},
    "Intention.Apply": {"destination": "db", "entry": None, "cas": 0},
    "Intention.List": {},
    "Intention.Match": {"by": "destination", "names": ["db"]},
    "Intention.Exact": {"source": "web", "destination": "db"},
    "Intention.Get": {"id": "0b1a"},
    "Intention.Decide": {"source": "web", "destination": "db"},
    "ConnectCA.Roots": {},
    "ConnectCA.Config": {},
    "ConnectCA.ConfigurationSet": {"provider": "consul"},
    "ConnectCA.Sign": {"csr": "not a csr"},
    "ConnectCA.SignIntermediate": {"csr": "not a csr"},
    "DiscoveryChain.Get": {"name": "web", "compile_dc": "dc1"},
    "Operator.RaftConfiguration": {},
    "Operator.RaftRemovePeer": {"id": "x"},
    "Operator.TransferLeader": {},
    "Operator.AutopilotHealth": {},
    "Operator.AutopilotState": {},
    "Operator.AutopilotGetConfiguration": {},
    "Operator.AutopilotSetConfiguration": {"cleanup_dead_servers": False},
    "Operator.Usage": {},
    "Catalog.GatewayServices": {"gateway": "gw"},
    "Snapshot.State": {},
    "Snapshot.Restore": {"state": b"not a snapshot"},
    "Status.Info": {},
    "PreparedQuery.Apply": {"op": "create", "query": {"Name": "q1", "Service": {"Service": "web"}}},
    "PreparedQuery.Get": {"id": SESSION},
    "PreparedQuery.List": {},
    "PreparedQuery.Explain": {"query": "q1"},
    "PreparedQuery.Execute": {"query": "q1", "dc": "dc1"},
    "PreparedQuery.ExecuteRemote": {"query": {"Service": {"Service": "web"}}, "dc": "dc1"},
    "ACL.BootstrapTokens": {},
    "ACL.TokenSet": {"token": {"Description": "t"}},
    "ACL.TokenClone": {"accessor": SESSION},
    "ACL.TokenDelete": {"id": SESSION},
    "ACL.TokenRead": {"accessor": SESSION},
    "ACL.ResolveToken": {"secret": SESSION},
    "ACL.TokenList": {},
    "ACL.PolicySet": {"row": {"Name": "p"}},
    "ACL.PolicyDelete": {"id": SESSION},
    "ACL.PolicyRead": {"id": SESSION},
    "ACL.PolicyList": {},
    "ACL.RoleSet": {"row": {"Name": "r"}},
    "ACL.RoleDelete": {"id": SESSION},
    "ACL.RoleRead": {"name": "r"},
    "ACL.RoleList": {},
    "ACL.AuthMethodSet": {"row": {"Name": "m", "Type": "jwt"}},
    "ACL.AuthMethodDelete": {"id": "m"},
    "ACL.AuthMethodRead": {"name": "m"},
    "ACL.AuthMethodList": {},
    "ACL.BindingRuleSet": {"row": {"AuthMethod": "m"}},
    "ACL.BindingRuleDelete": {"id": SESSION},
    "ACL.BindingRuleRead": {"id": SESSION},
    "ACL.BindingRuleList": {},
    "ACL.Login": {"method": "m", "bearer_token": "x"},
    "ACL.Logout": {},
    "ACL.ReplicationRows": {"table": "tokens"},
    "ACL.ReplicationStatus": {},
    "Coordinate.Update": {"node": "n1", "coord": {"Vec": [0.0] * 8, "Error": 1.5}},
    "Coordinate.ListDatacenters": {},
    "Catalog.ListDatacenters": {},
    "Coordinate.ListNodes": {},
    "Coordinate.Node": {"node": "n1"},
    "Internal.NodeDump": {},
    "Internal.NodeInfo": {"node": "n1"},
    "Internal.ServiceDump": {},
    "Internal.ServiceTopology": {"service": "web"},
    "Internal.GatewayServiceNodes": {"gateway": "gw"},
    "Internal.CatalogOverview": {},
}
# The (resource, segment, access) each call must at least ask for.
EXPECTED: dict[str, tuple[Resource, str, Access]] = {
    "KVS.Apply": (Resource.KEY, "app/config", Access.WRITE),
    "KVS.Get": (Resource.KEY, "app/config", Access.READ),
    "KVS.List": (Resource.KEY, "app/", Access.LIST),
    "Session.Apply": (Resource.SESSION, "n1", Access.WRITE),
    "Session.NodeSessions": (Resource.SESSION, "n1", Access.READ),
    "Txn.Apply": (Resource.KEY, "txn/k", Access.WRITE),
    "Txn.Read": (Resource.KEY, "txn/k", Access.READ),
    "Catalog.Register": (Resource.SERVICE, "web", Access.WRITE),
    "Catalog.ServiceNodes": (Resource.SERVICE, "web", Access.READ),
    "Catalog.NodeServices": (Resource.NODE, "n1", Access.READ),
    "ConfigEntry.Apply": (Resource.SERVICE, "web", Access.WRITE),
    "Intention.Apply": (Resource.INTENTION, "db", Access.WRITE),
    "Intention.Exact": (Resource.INTENTION, "db", Access.READ),
    "Intention.Decide": (Resource.SERVICE, "db", Access.READ),
    "ConnectCA.ConfigurationSet": (Resource.OPERATOR, "", Access.WRITE),
    "ConnectCA.SignIntermediate": (Resource.OPERATOR, "", Access.WRITE),
    "ACL.ReplicationRows": (Resource.ACL, "", Access.WRITE),
    "DiscoveryChain.Get": (Resource.SERVICE, "web", Access.READ),
    "Operator.RaftRemovePeer": (Resource.OPERATOR, "", Access.WRITE),
    "Operator.AutopilotSetConfiguration": (Resource.OPERATOR, "", Access.WRITE),
    "Operator.AutopilotGetConfiguration": (Resource.OPERATOR, "", Access.READ),
    "Operator.AutopilotState": (Resource.OPERATOR, "", Access.READ),
    "Operator.Usage": (Resource.OPERATOR, "", Access.READ),
    "Catalog.GatewayServices": (Resource.SERVICE, "gw", Access.READ),
    "Snapshot.Restore": (Resource.ACL, "", Access.WRITE),
    "PreparedQuery.Apply": (Resource.QUERY, "q1", Access.WRITE),
    "PreparedQuery.Explain": (Resource.QUERY, "q1", Access.READ),
    "ACL.TokenSet": (Resource.ACL, "", Access.WRITE),
    "ACL.TokenRead": (Resource.ACL, "", Access.READ),
    "ACL.PolicySet": (Resource.ACL, "", Access.WRITE),
    "ACL.PolicyList": (Resource.ACL, "", Access.READ),
    "Coordinate.Update": (Resource.NODE, "n1", Access.WRITE),
    "Coordinate.Node": (Resource.NODE, "n1", Access.READ),
}


def test_every_endpoint_has_a_call() -> None:
    assert set(CALLS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_endpoint_calls_authorize(name: str) -> None:
    calls: list[tuple[str, Resource, str, Access]] = []

    def record(token: str, resource: Resource, segment: str, access: Access) -> None:
        assert isinstance(resource, Resource) and isinstance(access, Access)
        assert isinstance(segment, str)
        calls.append((token, resource, segment, access))

    async def call() -> None:
        server = Server(
            node_name="n1",
            node_id="0d3c6f4e-3a55-4b8e-8c35-36e0d6b0f001",
            datacenter="dc1",
            advertise_addr="127.0.0.1",
            server_port=0,
            agent_token="agent-secret",
        )
        await server.start()
        previous = authz.set_authorizer(record)
        try:
            ep = REGISTRY[name]
            if ep.kind is Kind.READ:
                await server.read(name, CALLS[name], QueryOptions(), token="caller")
            else:
                await server.apply(name, ep.payload(**CALLS[name]), "caller")
        except Exception:  # refused after authorizing (no CA, no Raft...): still counted
            pass
        finally:
            authz.set_authorizer(previous)
            await server.stop()

    asyncio.run(call())
    if name in PUBLIC:
        assert calls == [], f"{name} is public in Consul and must not ask for a permission"
        return
    assert calls, f"{name} never called authorize"
    assert all(token == "caller" for token, *_ in calls)
    if name in EXPECTED:
        assert EXPECTED[name] in [c[1:] for c in calls], calls


def test_agent_internal_calls_carry_the_agent_token() -> None:
    seen: list[str] = []

    def record(token: str, resource: Resource, segment: str, access: Access) -> None:
        seen.append(token)

    async def call() -> None:
        server = Server(
            node_name="n1",
            node_id="0d3c6f4e-3a55-4b8e-8c35-36e0d6b0f002",
            datacenter="dc1",
            advertise_addr="127.0.0.1",
            server_port=0,
            agent_token="agent-secret",
        )
        await server.start()
        previous = authz.set_authorizer(record)
        try:
            await server.read("KVS.Get", {"key": "k"}, QueryOptions())  # no token: the agent's
            await server.read("KVS.Get", {"key": "k"}, QueryOptions(), token="")  # anonymous
        finally:
            authz.set_authorizer(previous)
            await server.stop()

    asyncio.run(call())
    assert seen == ["agent-secret", ""]
