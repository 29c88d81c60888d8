"""The agent's ACL resolver: the core `Resolver` over the agent's delegate (in-process on a
server or dev agent, RPC on a client agent), so the agent's own endpoints (/v1/agent/...,
leaf certificates, xDS, DNS) authorize with the same rules as the servers.

`acl.tokens.default` stands in for a request without a token; `acl.tokens.agent_recovery`
resolves locally (agent:write on this node, no server needed), as in Consul.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from consulpy.acl.authorizer import Authorizer
from consulpy.acl.resolver import ACLNotFound, Resolved, Resolver
from consulpy.acl.rules import parse_rules
from consulpy.config.model import ACL as ACLConfig
from consulpy.server.acl_lookup import DelegateLookup, ReadDelegate

RECOVERY_ACCESSOR_ID = "agent-recovery-token"

__all__ = ["ACLNotFound", "AgentACL", "Resolved"]


class AgentACL:
    """Resolves the callers of this agent's endpoints; None on the agent when ACLs are off."""

    def __init__(
        self,
        config: ACLConfig,
        delegate: ReadDelegate,
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
