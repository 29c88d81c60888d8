"""Token resolution: SecretID -> the token's identity and a compiled, cached `Authorizer`.

Tokens, policies and roles are fetched through an `ACLLookup` (the state store on a server, RPC
on a client agent) and cached for token_ttl / policy_ttl / role_ttl; compiled authorizers are
shared by every token with the same effective policies. When the lookup raises `ACLUnreachable`
the `down_policy` decides: allow or deny everything, or keep using stale cache entries
(extend-cache; async-cache also serves them while refreshing in the background).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from consulpy.acl.authorizer import (
    AllowAllAuthorizer,
    Authorizer,
    DenyAllAuthorizer,
    ManagementAuthorizer,
    PermissionDenied,
    permission_denied_text,
)
from consulpy.acl.identities import (
    ANONYMOUS_TOKEN_ACCESSOR_ID,
    ANONYMOUS_TOKEN_SECRET_ID,
    GLOBAL_MANAGEMENT_POLICY_ID,
    applies_in,
    node_identity_rules,
    service_identity_rules,
)
from consulpy.acl.rules import PolicyRules, parse_rules

DOWN_POLICIES = ("allow", "deny", "extend-cache", "async-cache")
_MANAGEMENT = ManagementAuthorizer()
_ALLOW_ALL = AllowAllAuthorizer()
_DENY_ALL = DenyAllAuthorizer()
T = TypeVar("T")


class ACLNotFound(Exception):
    """Unknown or expired secret (HTTP 403 `ACL not found`)."""

    def __init__(self) -> None:
        super().__init__("ACL not found")


class ACLUnreachable(Exception):
    """Raised by a lookup that cannot reach the servers; triggers `down_policy`."""


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    service_name: str
    datacenters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_name: str
    datacenter: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What resolution needs of a token. Links are IDs (names are re-resolved on read)."""

    accessor_id: str
    secret_id: str
    policy_ids: tuple[str, ...] = ()
    role_ids: tuple[str, ...] = ()
    service_identities: tuple[ServiceIdentity, ...] = ()
    node_identities: tuple[NodeIdentity, ...] = ()
    expiration_time: float | None = None  # unix seconds; None = never
    local: bool = False


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    id: str
    name: str
    rules: str
    datacenters: tuple[str, ...] = ()
    modify_index: int = 0


@dataclass(frozen=True, slots=True)
class RoleInfo:
    id: str
    name: str
    policy_ids: tuple[str, ...] = ()
    service_identities: tuple[ServiceIdentity, ...] = ()
    node_identities: tuple[NodeIdentity, ...] = ()


class ACLLookup(Protocol):
    """Where the resolver reads ACL objects. Missing -> None; unreachable -> ACLUnreachable."""

    async def token_by_secret(self, secret_id: str) -> TokenInfo | None: ...

    async def policy_by_id(self, policy_id: str) -> PolicyInfo | None: ...

    async def policy_by_name(self, name: str) -> PolicyInfo | None: ...

    async def role_by_id(self, role_id: str) -> RoleInfo | None: ...

    async def role_by_name(self, name: str) -> RoleInfo | None: ...


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request's identity: who (for error texts) and what they may do."""

    accessor_id: str
    authorizer: Authorizer
    token: TokenInfo | None = None

    def denied(self, resource: str, access: str, segment: str | None = None) -> PermissionDenied:
        """The exception to raise for a refused check."""
        return PermissionDenied(permission_denied_text(self.accessor_id, resource, access, segment))


@dataclass(slots=True)
class _Entry:
    value: Any
    fetched: float


@dataclass(slots=True)
class _Cache:
    ttl: float
    entries: dict[str, _Entry] = field(default_factory=dict)


class _Down(Exception):
    """The servers are unreachable and the cache cannot stand in."""


class Resolver:
    """Resolves secrets into `Resolved` identities, caching per the agent's ACL config."""

    def __init__(
        self,
        lookup: ACLLookup,
        *,
        default_policy: str = "allow",
        down_policy: str = "extend-cache",
        token_ttl: float = 30.0,
        policy_ttl: float = 30.0,
        role_ttl: float = 30.0,
        clock: Callable[[], float] = time.time,
        datacenter: str = "dc1",
        enable_key_list_policy: bool = False,
    ) -> None:
        if default_policy not in ("allow", "deny"):
            raise ValueError("default_policy must be allow or deny")
        if down_policy not in DOWN_POLICIES:
            raise ValueError(f"down_policy must be one of {', '.join(DOWN_POLICIES)}")
        self._lookup = lookup
        self.default_policy = default_policy
        self.down_policy = down_policy
        self.datacenter = datacenter
        self.enable_key_list_policy = enable_key_list_policy
        self._clock = clock
        self._tokens = _Cache(token_ttl)
        self._policies = _Cache(policy_ttl)
        self._roles = _Cache(role_ttl)
        self._compiled: dict[tuple[Any, ...], Authorizer] = {}
        self._parsed: dict[tuple[str, int, str], PolicyRules] = {}
        self._refreshing: set[tuple[int, str]] = set()
        self._inflight: dict[tuple[int, str], asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._invalidated_at = 0
        self.fetches = 0  # lookups made (tests and metrics)

    # Cache control
    def invalidate(self, index: int | None = None) -> None:
        """Drop every cached entry (an ACL table changed at Raft `index`; older notifications
        than one already handled are ignored)."""
        if index is not None:
            if index <= self._invalidated_at:
                return
            self._invalidated_at = index
        for cache in (self._tokens, self._policies, self._roles):
            cache.entries.clear()

    def invalidate_token(self, secret_id: str) -> None:
        self._tokens.entries.pop(secret_id, None)

    def invalidate_policy(self, policy_id: str) -> None:
        self._policies.entries.pop(policy_id, None)

    def invalidate_role(self, role_id: str) -> None:
        self._roles.entries.pop(role_id, None)

    # Resolution
    async def resolve(self, secret_id: str | None) -> Resolved:
        """The identity behind a secret; no secret = the anonymous token (an agent substitutes
        its `acl.tokens.default` before calling). Raises ACLNotFound for an unknown or expired
        secret."""
        secret = secret_id or ANONYMOUS_TOKEN_SECRET_ID
        try:
            return await self._resolve(secret)
        except _Down:
            return Resolved("", _ALLOW_ALL if self.down_policy == "allow" else _DENY_ALL)

    async def _resolve(self, secret: str) -> Resolved:
        token = await self._cached(self._tokens, secret, self._lookup.token_by_secret)
        if token is None or self._expired(token):
            if secret == ANONYMOUS_TOKEN_SECRET_ID:
                return Resolved(ANONYMOUS_TOKEN_ACCESSOR_ID, self._compile((), ()))
            raise ACLNotFound()
        policy_ids = list(token.policy_ids)
        service_ids = list(token.service_identities)
        node_ids = list(token.node_identities)
        for role_id in token.role_ids:
            role = await self._cached(self._roles, role_id, self._lookup.role_by_id)
            if role is None:
                continue  # a deleted role grants nothing
            policy_ids.extend(role.policy_ids)
            service_ids.extend(role.service_identities)
            node_ids.extend(role.node_identities)
        if GLOBAL_MANAGEMENT_POLICY_ID in policy_ids:
            return Resolved(token.accessor_id, _MANAGEMENT, token)
        policies: list[PolicyInfo] = []
        for policy_id in dict.fromkeys(policy_ids):
            policy = await self._cached(self._policies, policy_id, self._lookup.policy_by_id)
            if policy is not None and applies_in(policy.datacenters, self.datacenter):
                policies.append(policy)
        identities = tuple(
            sorted(
                {
                    ("s", s.service_name)
                    for s in service_ids
                    if applies_in(s.datacenters, self.datacenter)
                }
                | {("n", n.node_name) for n in node_ids if n.datacenter in ("", self.datacenter)}
            )
        )
        return Resolved(token.accessor_id, self._compile(tuple(policies), identities), token)

    def _expired(self, token: TokenInfo) -> bool:
        return token.expiration_time is not None and token.expiration_time <= self._clock()

    def _compile(
        self, policies: tuple[PolicyInfo, ...], identities: tuple[tuple[str, str], ...]
    ) -> Authorizer:
        key = (tuple((p.id, p.modify_index, p.rules) for p in policies), identities)
        found = self._compiled.get(key)
        if found is not None:
            return found
        rules = [self._parse(p) for p in policies]
        for kind, name in identities:
            rules.append(service_identity_rules(name) if kind == "s" else node_identity_rules(name))
        authorizer = Authorizer(
            rules,
            default_policy=self.default_policy,
            enable_key_list_policy=self.enable_key_list_policy,
        )
        if len(self._compiled) > 4096:
            self._compiled.clear()  # bounded; rebuilt on demand
        self._compiled[key] = authorizer
        return authorizer

    def _parse(self, policy: PolicyInfo) -> PolicyRules:
        key = (policy.id, policy.modify_index, policy.rules)
        found = self._parsed.get(key)
        if found is None:
            found = parse_rules(policy.rules)  # stored policies were validated on write
            if len(self._parsed) > 4096:
                self._parsed.clear()
            self._parsed[key] = found
        return found

    async def _cached(self, cache: _Cache, key: str, fetch: Callable[[str], Awaitable[T]]) -> T:
        entry = cache.entries.get(key)
        now = self._clock()
        if entry is not None and now - entry.fetched < cache.ttl:
            return entry.value  # type: ignore[no-any-return]
        if entry is not None and self.down_policy == "async-cache":
            self._refresh_later(cache, key, fetch)
            return entry.value  # type: ignore[no-any-return]
        try:
            value = await self._fetch_once(cache, key, fetch)
        except ACLUnreachable:
            if entry is not None and self.down_policy in ("extend-cache", "async-cache"):
                return entry.value  # type: ignore[no-any-return]
            raise _Down() from None
        return value

    async def _fetch_once(self, cache: _Cache, key: str, fetch: Callable[[str], Awaitable[T]]) -> T:
        """One lookup per key at a time: concurrent requests with the same token share it."""
        marker = (id(cache), key)
        pending = self._inflight.get(marker)
        if pending is not None:
            return await asyncio.shield(pending)  # type: ignore[no-any-return]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[marker] = future
        try:
            value = await fetch(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            self.fetches += 1
            if cache.ttl > 0:
                cache.entries[key] = _Entry(value, self._clock())
            return value
        finally:
            del self._inflight[marker]

    def _refresh_later(
        self, cache: _Cache, key: str, fetch: Callable[[str], Awaitable[Any]]
    ) -> None:
        marker = (id(cache), key)
        if marker in self._refreshing:
            return
        self._refreshing.add(marker)

        async def refresh() -> None:
            try:
                value = await fetch(key)
            except ACLUnreachable:
                return  # keep serving the stale entry
            finally:
                self._refreshing.discard(marker)
            self.fetches += 1
            cache.entries[key] = _Entry(value, self._clock())

        task = asyncio.get_running_loop().create_task(refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_refreshes(self) -> None:
        """Wait for background (async-cache) refreshes; for tests and shutdown."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
