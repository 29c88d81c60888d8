"""The server endpoints: one module per Consul RPC endpoint family.

HTTP handlers and agent parts build a typed `Request` and call an endpoint by name through
the agent's delegate: in-process on a server or dev agent, over RPC from a client agent. The
server looks the name up in `REGISTRY` (the same table its RPC dispatcher serves, nothing
else), validates, authorizes (`authz.authorize`), stamps the leader's clock and only then
builds the FSM command. See docs/server-endpoints.md.
"""

from __future__ import annotations

from consulpy.server.endpoints import (
    acl,
    catalog,
    config_entry,
    connect_ca,
    coordinate,
    discovery_chain,
    health,
    intention,
    internal,
    kvs,
    operator,
    prepared_query,
    session,
    snapshot,
    status,
    txn,
)
from consulpy.server.endpoints.base import Endpoint, Kind
from consulpy.server.endpoints.request import Empty, Request

FAMILIES = (
    kvs,
    session,
    txn,
    catalog,
    health,
    config_entry,
    intention,
    connect_ca,
    discovery_chain,
    operator,
    snapshot,
    status,
    acl,
)
FAMILIES += (prepared_query, coordinate, internal)


def _registry() -> dict[str, Endpoint]:
    out: dict[str, Endpoint] = {}
    for family in FAMILIES:
        for ep in family.ENDPOINTS:
            if ep.name in out:
                raise RuntimeError(f"endpoint {ep.name} registered twice")
            out[ep.name] = ep
    return out


REGISTRY: dict[str, Endpoint] = _registry()
# Endpoints Consul answers without any ACL check (status, CA roots; ACL.ResolveToken: an
# agent's resolver, where holding the secret is the permission).
PUBLIC = frozenset(
    {
        "Status.Info",
        "Coordinate.ListDatacenters",
        "Catalog.ListDatacenters",
        "ConnectCA.Roots",
        "ACL.BootstrapTokens",
        "ACL.ReplicationStatus",  # no token, as Consul (it leaks nothing; health checks use it)
        "ACL.Login",
        "ACL.Logout",
        "ACL.ResolveToken",
    }
)

__all__ = ["PUBLIC", "REGISTRY", "Empty", "Endpoint", "Kind", "Request"]
