"""The agent's ACL resolver: the core `Resolver` over the agent's delegate (in-process on a
server or dev agent, RPC on a client agent), so the agent's own endpoints (/v1/agent/...,
leaf certificates, xDS, DNS) authorize with the same rules as the servers.

`acl.tokens.default` stands in for a request without a token; `acl.tokens.agent_recovery`
resolves locally (agent:write on this node, no server needed), as in Consul.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from consulpy.acl.authorizer import Authorizer
from consulpy.acl.resolver import (
    ACLNotFound,
    ACLUnreachable,
    NodeIdentity,
    PolicyInfo,
    Resolved,
    Resolver,
    RoleInfo,
    ServiceIdentity,
    TokenInfo,
)
from consulpy.acl.rules import parse_rules
from consulpy.config.model import ACL as ACLConfig
from consulpy.server.query import QueryOptions

RECOVERY_ACCESSOR_ID = "agent-recovery-token"

__all__ = ["ACLNotFound", "AgentACL", "Resolved"]


class _Delegate(Protocol):
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

    def __init__(self, delegate: _Delegate) -> None:
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


class AgentACL:
    """Resolves the callers of this agent's endpoints; None on the agent when ACLs are off."""

    def __init__(
        self,
        config: ACLConfig,
        delegate: _Delegate,
        node_name: str,
        datacenter: str,
        clock: Callable[[], float] = time.time,
        acl_index: Callable[[], int] | None = None,
    ):
        self.config = config
        self.node_name = node_name
        # On a server (or dev) agent: the Raft index of the ACL tables; a change drops the
        # cache so edits apply at once. Client agents see edits after the TTLs.
        self._acl_index = acl_index
        self.resolver = Resolver(
            DelegateLookup(delegate),
            default_policy=config.default_policy,
            down_policy=config.down_policy,
            token_ttl=config.token_ttl,
            policy_ttl=config.policy_ttl,
            role_ttl=config.role_ttl,
            datacenter=datacenter,
            enable_key_list_policy=config.enable_key_list_policy,
            clock=clock,
        )
        # agent:write on this node and node:read (as Consul's recovery token); deny the rest.
        self._recovery = Resolved(
            RECOVERY_ACCESSOR_ID,
            Authorizer(
                [
                    parse_rules(
                        f'agent "{node_name}" {{ policy = "write" }}\n'
                        'node_prefix "" { policy = "read" }'
                    )
                ],
                default_policy="deny",
            ),
        )

    @property
    def default_policy(self) -> str:
        return self.config.default_policy

    def effective(self, token: str) -> str:
        """The secret a request acts with: its own, else `acl.tokens.default`."""
        return token or self.config.tokens.get("default", "")

    async def resolve(self, token: str) -> Resolved:
        """Raises ACLNotFound for an unknown secret."""
        secret = self.effective(token)
        recovery = self.config.tokens.get("agent_recovery", "")
        if recovery and secret == recovery:
            return self._recovery
        if self._acl_index is not None:
            self.resolver.invalidate(self._acl_index())
        try:
            return await self.resolver.resolve(secret or None)
        except ACLNotFound:
            # A secret unknown a moment ago may exist now (a token just created, or the
            # initial management token right after startup): ask again rather than keep
            # serving a cached miss for token_ttl.
            self.resolver.invalidate_token(secret)
            return await self.resolver.resolve(secret or None)


def xds_authorizer(agent: Any) -> Any:
    """The xDS stream check: the stream's token (x-consul-token, from the bootstrap) needs
    service:write on the proxy's destination service; refused streams end with
    PERMISSION_DENIED (UNAUTHENTICATED for an unknown token). Nothing is checked with ACLs off.
    """
    from consulpy.agent.proxylookup import PermissionDenied, Unauthenticated

    async def check(proxy_id: str, token: str) -> None:
        acl: AgentACL | None = agent.acl
        if acl is None:
            return
        svc = agent.local.services.get(proxy_id)
        row = svc.row if svc is not None else {}
        destination = (row.get("Proxy") or {}).get("DestinationServiceName") or row.get(
            "Service", proxy_id
        )
        try:
            who = await acl.resolve(token)
        except ACLNotFound as exc:
            raise Unauthenticated("ACL not found") from exc
        if not who.authorizer.allowed("service", destination, "write"):
            raise PermissionDenied(str(who.denied("service", "write", destination)))

    return check


def dns_token(agent: Any) -> Any:
    """The token the DNS interface reads with: acl.tokens.dns, else acl.tokens.default, else
    anonymous (""); None (the agent's own) when ACLs are off. Read per query."""

    def token() -> str | None:
        acl = agent.config.acl
        if not acl.enabled:
            return None
        return str(acl.tokens.get("dns") or acl.tokens.get("default") or "")

    return token
