"""The ACL lookups token resolution reads through.

- `StoreLookup`: a server's own replicated store (Consul's servers resolve tokens from their
  state).
- `DelegateLookup`: the `ACL.ResolveToken` read (an agent's resolver, through its delegate).
- `SecondaryLookup`: a server of a secondary datacenter: its store, and for a secret the
  store does not know, `ACL.ResolveToken`, which such a server answers from the primary (a
  global token not replicated yet, or never: without `acl.enable_token_replication`), as
  Consul's secondaries resolve tokens remotely.
"""

from __future__ import annotations

from typing import Any, Protocol

from consulpy.acl.resolver import (
    ACLUnreachable,
    NodeIdentity,
    PolicyInfo,
    RoleInfo,
    ServiceIdentity,
    TokenInfo,
)
from consulpy.server.query import QueryOptions
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


class ReadDelegate(Protocol):
    """What reads ACL rows: an agent's delegate (in-process server, or RPC), or a server."""

    async def read(
        self, name: str, args: Any, opts: QueryOptions, token: str | None = None
    ) -> tuple[Any, Any]: ...


def _unreachable(exc: Exception) -> bool:
    """Errors meaning 'no server answered' (down_policy applies), not 'the server said no'."""
    from consulpy.rpc.errors import RPCDialError, RPCUnavailable
    from consulpy.server.errors import NoLeaderError

    if isinstance(exc, (RPCDialError, RPCUnavailable, NoLeaderError, OSError, TimeoutError)):
        return True
    return type(exc).__name__ == "NoServersError"


def _rfc3339(text: str) -> float | None:
    if not text:
        return None
    from consulpy.server.endpoints.acl import parse_rfc3339

    return parse_rfc3339(text)


def _service_ids(rows: Any) -> tuple[ServiceIdentity, ...]:
    return tuple(
        ServiceIdentity(s.get("ServiceName", ""), tuple(s.get("Datacenters") or ()))
        for s in rows or ()
    )


def _node_ids(rows: Any) -> tuple[NodeIdentity, ...]:
    return tuple(NodeIdentity(n.get("NodeName", ""), n.get("Datacenter", "")) for n in rows or ())


def _policy(row: dict[str, Any]) -> PolicyInfo:
    return PolicyInfo(
        id=row["ID"],
        name=row["Name"],
        rules=row.get("Rules", ""),
        datacenters=tuple(row.get("Datacenters") or ()),
        modify_index=int(row.get("ModifyIndex") or 0),
    )


def _role(row: dict[str, Any]) -> RoleInfo:
    return RoleInfo(
        id=row["ID"],
        name=row["Name"],
        policy_ids=tuple(p["ID"] for p in row.get("Policies") or ()),
        service_identities=_service_ids(row.get("ServiceIdentities")),
        node_identities=_node_ids(row.get("NodeIdentities")),
    )


class DelegateLookup:
    """`ACLLookup` over the servers' `ACL.ResolveToken` read: one read brings the token with
    its policies and roles; they are kept for the policy/role lookups that follow."""

    def __init__(self, delegate: ReadDelegate) -> None:
        self._delegate = delegate
        self._policies: dict[str, PolicyInfo] = {}
        self._roles: dict[str, RoleInfo] = {}

    async def _read(self, name: str, args: dict[str, Any]) -> Any:
        try:
            _, value = await self._delegate.read(name, args, QueryOptions(), token="")
        except Exception as exc:
            if _unreachable(exc):
                raise ACLUnreachable(str(exc)) from exc
            raise
        return value

    async def token_by_secret(self, secret_id: str) -> TokenInfo | None:
        bundle = await self._read("ACL.ResolveToken", {"secret": secret_id})
        if not bundle:
            return None
        for row in bundle.get("Policies") or ():
            self._policies[row["ID"]] = _policy(row)
        for row in bundle.get("Roles") or ():
            self._roles[row["ID"]] = _role(row)
        token = bundle["Token"]
        return TokenInfo(
            accessor_id=token["AccessorID"],
            secret_id=token["SecretID"],
            policy_ids=tuple(p["ID"] for p in token.get("Policies") or ()),
            role_ids=tuple(r["ID"] for r in token.get("Roles") or ()),
            service_identities=_service_ids(token.get("ServiceIdentities")),
            node_identities=_node_ids(token.get("NodeIdentities")),
            expiration_time=_rfc3339(token.get("ExpirationTime") or ""),
            local=bool(token.get("Local")),
        )

    async def policy_by_id(self, policy_id: str) -> PolicyInfo | None:
        return self._policies.get(policy_id)

    async def policy_by_name(self, name: str) -> PolicyInfo | None:
        return next((p for p in self._policies.values() if p.name == name), None)

    async def role_by_id(self, role_id: str) -> RoleInfo | None:
        return self._roles.get(role_id)

    async def role_by_name(self, name: str) -> RoleInfo | None:
        return next((r for r in self._roles.values() if r.name == name), None)


class SecondaryLookup:
    """A secondary datacenter's server: the local store first, then (for a secret it does not
    know) the primary through `ACL.ResolveToken`, with the policies and roles its answer
    brings for the rows not replicated here yet."""

    def __init__(self, store: StateStore, server: ReadDelegate) -> None:
        self._local = StoreLookup(store)
        self._remote = DelegateLookup(server)

    async def token_by_secret(self, secret_id: str) -> TokenInfo | None:
        found = await self._local.token_by_secret(secret_id)
        if found is None:
            found = await self._remote.token_by_secret(secret_id)
        return found

    async def policy_by_id(self, policy_id: str) -> PolicyInfo | None:
        return await self._local.policy_by_id(policy_id) or await self._remote.policy_by_id(
            policy_id
        )

    async def policy_by_name(self, name: str) -> PolicyInfo | None:
        return await self._local.policy_by_name(name) or await self._remote.policy_by_name(name)

    async def role_by_id(self, role_id: str) -> RoleInfo | None:
        return await self._local.role_by_id(role_id) or await self._remote.role_by_id(role_id)

    async def role_by_name(self, name: str) -> RoleInfo | None:
        return await self._local.role_by_name(name) or await self._remote.role_by_name(name)
