"""The ACL lookup a server's resolver reads: its own replicated store (Consul's servers resolve
tokens from their state, never over the network)."""

from __future__ import annotations

from typing import Any

from consulpy.acl.resolver import NodeIdentity, PolicyInfo, RoleInfo, ServiceIdentity, TokenInfo
from consulpy.state.acl import POLICIES, ROLES, TOKENS
from consulpy.state.store import StateStore

ACL_TABLES = (TOKENS, POLICIES, ROLES)


def _services(rows: Any) -> tuple[ServiceIdentity, ...]:
    return tuple(
        ServiceIdentity(s["ServiceName"], tuple(s.get("Datacenters") or ())) for s in rows or ()
    )


def _nodes(rows: Any) -> tuple[NodeIdentity, ...]:
    return tuple(NodeIdentity(n["NodeName"], n.get("Datacenter", "")) for n in rows or ())


class StoreLookup:
    """`ACLLookup` over a server's state store (the store is read at call time: a restore that
    swaps the tables is seen)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def token_by_secret(self, secret_id: str) -> TokenInfo | None:
        row = self._store.acl.tokens.get_unique(secret_id)
        if row is None:
            return None
        expires = row.get("_expires") or 0
        return TokenInfo(
            accessor_id=row["AccessorID"],
            secret_id=row["SecretID"],
            policy_ids=tuple(p["ID"] for p in row.get("Policies") or ()),
            role_ids=tuple(r["ID"] for r in row.get("Roles") or ()),
            service_identities=_services(row.get("ServiceIdentities")),
            node_identities=_nodes(row.get("NodeIdentities")),
            expiration_time=float(expires) if expires else None,
            local=bool(row.get("Local")),
        )

    async def policy_by_id(self, policy_id: str) -> PolicyInfo | None:
        return _policy(self._store.acl.policies.get(policy_id))

    async def policy_by_name(self, name: str) -> PolicyInfo | None:
        return _policy(self._store.acl.policies.get_unique(name))

    async def role_by_id(self, role_id: str) -> RoleInfo | None:
        return _role(self._store.acl.roles.get(role_id))

    async def role_by_name(self, name: str) -> RoleInfo | None:
        return _role(self._store.acl.roles.get_unique(name))


def _policy(row: Any) -> PolicyInfo | None:
    if row is None:
        return None
    return PolicyInfo(
        id=row["ID"],
        name=row["Name"],
        rules=row.get("Rules") or "",
        datacenters=tuple(row.get("Datacenters") or ()),
        modify_index=int(row.get("ModifyIndex") or 0),
    )


def _role(row: Any) -> RoleInfo | None:
    if row is None:
        return None
    return RoleInfo(
        id=row["ID"],
        name=row["Name"],
        policy_ids=tuple(p["ID"] for p in row.get("Policies") or ()),
        service_identities=_services(row.get("ServiceIdentities")),
        node_identities=_nodes(row.get("NodeIdentities")),
    )
