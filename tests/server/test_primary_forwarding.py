"""Which writes a secondary datacenter's server sends to the primary: config entries,
intentions, policies, roles and global tokens; a local token's writes stay."""

from __future__ import annotations

from consulpy.server.endpoints.acl import ByID, RowSet, TokenClone, TokenSet
from consulpy.server.endpoints.config_entry import ConfigEntryApply
from consulpy.server.endpoints.kvs import KVSApply
from consulpy.server.endpoints.request import Request
from consulpy.server.replication import forward_to_primary
from consulpy.server.server import Server

LOCAL = "6a1f7c2e-0000-4000-8000-000000000001"
GLOBAL = "6a1f7c2e-0000-4000-8000-000000000002"


def server(dc: str) -> Server:
    s = Server(
        node_name="n1",
        node_id="0d3c6f4e-3a55-4b8e-8c35-36e0d6b0f0aa",
        datacenter=dc,
        advertise_addr="127.0.0.1",
        server_port=0,
        primary_datacenter="dc1",
    )
    for accessor, local in ((LOCAL, True), (GLOBAL, False)):
        s.store.acl.tokens.rows[accessor] = {"AccessorID": accessor, "Local": local}
    return s


def goes(s: Server, name: str, payload: object) -> bool:
    return forward_to_primary(s, name, Request(payload=payload))


def test_a_secondary_forwards_global_writes_and_keeps_local_ones() -> None:
    s = server("dc2")
    assert not s.is_primary()
    entry = ConfigEntryApply(entry={"Kind": "service-defaults", "Name": "web"})
    assert goes(s, "ConfigEntry.Apply", entry)
    assert goes(s, "ACL.PolicySet", RowSet(row={"Name": "p"}))
    assert goes(s, "ACL.TokenSet", TokenSet(token={}))
    assert not goes(s, "ACL.TokenSet", TokenSet(token={"Local": True}))
    assert not goes(s, "ACL.TokenSet", TokenSet(token={"AccessorID": LOCAL}, create=False))
    assert goes(s, "ACL.TokenDelete", ByID(id=GLOBAL))
    assert not goes(s, "ACL.TokenDelete", ByID(id=LOCAL))
    assert not goes(s, "ACL.TokenClone", TokenClone(accessor=LOCAL))
    assert not goes(s, "KVS.Apply", KVSApply(verb="set", key="k"))


def test_the_primary_forwards_nothing() -> None:
    s = server("dc1")
    assert s.is_primary()
    entry = ConfigEntryApply(entry={"Kind": "service-defaults", "Name": "web"})
    assert not goes(s, "ConfigEntry.Apply", entry)
    assert not goes(s, "ACL.TokenSet", TokenSet(token={}))
