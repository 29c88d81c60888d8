"""Authorizers: the rules of all of a token's policies compiled into one decision table.

Decision for `(resource, segment, access)`: an exact rule for the segment wins, else the longest
matching prefix rule; rules for the same label from several policies merge to the strongest
(deny > write > list > read); with no matching rule, `mesh` and `peering` fall back to `operator`
and everything else to the default policy. A disposition grants its level and those below it
(write > list > read); deny grants nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from consulpy.acl.identities import ANONYMOUS_TOKEN_ACCESSOR_ID
from consulpy.acl.rules import DENY, LIST, READ, STRENGTH, UNLABELLED, WRITE, PolicyRules

RESOURCES = (
    "acl",
    "agent",
    "event",
    "intention",
    "key",
    "keyring",
    "mesh",
    "node",
    "operator",
    "peering",
    "query",
    "service",
    "session",
)
ACCESS_LEVELS = (READ, LIST, WRITE)
# Which level each disposition grants, lowest first.
_GRANTS = {READ: {READ}, LIST: {READ, LIST}, WRITE: {READ, LIST, WRITE}, DENY: set()}


class PermissionDenied(Exception):
    """A refused check; `str()` is Consul's 403 text."""


def permission_denied_text(
    accessor_id: str | None, resource: str, access: str, segment: str | None = None
) -> str:
    """Consul's 403 body for a refused check; `segment` is None for unlabelled resources."""
    where = "" if segment is None else f' on "{segment}"'
    if accessor_id in (None, "", ANONYMOUS_TOKEN_ACCESSOR_ID):
        return (
            f"Permission denied: anonymous token lacks permission '{resource}:{access}'{where}. "
            "The anonymous token is used implicitly when a request does not specify a token."
        )
    return (
        f"Permission denied: token with AccessorID '{accessor_id}' lacks permission "
        f"'{resource}:{access}'{where}"
    )


def _stronger(old: str | None, new: str) -> str:
    return new if old is None or STRENGTH[new] > STRENGTH[old] else old


class _Table:
    """Exact and prefix dispositions for one resource, with prefixes longest first."""

    __slots__ = ("_ordered", "exact", "prefix")

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self.prefix: dict[str, str] = {}
        self._ordered: list[tuple[str, str]] = []

    def add(self, segment: str, prefix: bool, access: str) -> None:
        target = self.prefix if prefix else self.exact
        target[segment] = _stronger(target.get(segment), access)

    def seal(self) -> None:
        self._ordered = sorted(self.prefix.items(), key=lambda kv: len(kv[0]), reverse=True)

    def lookup(self, segment: str) -> str | None:
        found = self.exact.get(segment)
        if found is not None:
            return found
        for name, access in self._ordered:
            if segment.startswith(name):
                return access
        return None

    def longest_prefix(self, segment: str) -> str | None:
        for name, access in self._ordered:
            if segment.startswith(name):
                return access
        return None

    def under(self, segment: str) -> Iterable[str]:
        """Dispositions of every rule whose label starts with `segment`."""
        for name, access in self.exact.items():
            if name.startswith(segment):
                yield access
        for name, access in self.prefix.items():
            if name.startswith(segment):
                yield access


class Authorizer:
    """Decisions for one set of policies. Immutable once built; share it freely."""

    def __init__(
        self,
        policies: Iterable[PolicyRules] = (),
        *,
        default_policy: str = "allow",
        enable_key_list_policy: bool = False,
    ) -> None:
        if default_policy not in ("allow", "deny"):
            raise ValueError(f"default_policy must be allow or deny, not {default_policy!r}")
        self.default_allow = default_policy == "allow"
        self.enable_key_list_policy = enable_key_list_policy
        self._global: dict[str, str] = {}
        self._tables: dict[str, _Table] = {r: _Table() for r in RESOURCES if r not in UNLABELLED}
        explicit = _Table()
        for policy in policies:
            for rule in policy.rules:
                if rule.resource in UNLABELLED:
                    self._global[rule.resource] = _stronger(
                        self._global.get(rule.resource), rule.access
                    )
                    continue
                self._tables[rule.resource].add(rule.segment, rule.prefix, rule.access)
                if rule.resource == "service" and rule.intentions is not None:
                    explicit.add(rule.segment, rule.prefix, rule.intentions)
        # As in Consul, explicit `intentions` merge on their own; a merged service rule without
        # any takes its intentions from the merged service disposition.
        services, intentions = self._tables["service"], self._tables["intention"]
        for prefix, rules in ((False, services.exact), (True, services.prefix)):
            given = explicit.prefix if prefix else explicit.exact
            for segment, access in rules.items():
                intentions.add(segment, prefix, given.get(segment) or _intentions_of(access))
        for table in self._tables.values():
            table.seal()

    # The one general check every typed helper goes through.
    def allowed(self, resource: str, segment: str, access: str) -> bool:
        """May the token do `access` (read/list/write) on `resource` `segment`?"""
        if resource not in RESOURCES:
            raise ValueError(f"unknown ACL resource {resource!r}")
        if access not in ACCESS_LEVELS:
            raise ValueError(f"unknown ACL access level {access!r}")
        disposition = self._disposition(resource, segment)
        if disposition is None:
            # As in Consul, `default_policy = "allow"` never grants the `acl` resource: only an
            # explicit rule (or management) lets a token read or change the ACL system.
            return self.default_allow and resource != "acl"
        return access in _GRANTS[disposition]

    def _disposition(self, resource: str, segment: str) -> str | None:
        if resource in UNLABELLED:
            found = self._global.get(resource)
            if found is None and resource in ("mesh", "peering"):
                found = self._global.get("operator")
            return found
        return self._tables[resource].lookup(segment)

    # Typed helpers, named after Consul's checks.
    def acl_read(self) -> bool:
        return self.allowed("acl", "", READ)

    def acl_write(self) -> bool:
        return self.allowed("acl", "", WRITE)

    def agent_read(self, node: str) -> bool:
        return self.allowed("agent", node, READ)

    def agent_write(self, node: str) -> bool:
        return self.allowed("agent", node, WRITE)

    def event_read(self, name: str) -> bool:
        return self.allowed("event", name, READ)

    def event_write(self, name: str) -> bool:
        return self.allowed("event", name, WRITE)

    def intention_read(self, destination: str) -> bool:
        return self.allowed("intention", destination, READ)

    def intention_write(self, destination: str) -> bool:
        return self.allowed("intention", destination, WRITE)

    def key_read(self, key: str) -> bool:
        return self.allowed("key", key, READ)

    def key_list(self, prefix: str) -> bool:
        """The `list` level on a prefix, whatever `enable_key_list_policy` says."""
        return self.allowed("key", prefix, LIST)

    def key_list_allowed(self, prefix: str) -> bool:
        """What `?keys`/`?recurse` needs up front: `list` when enable_key_list_policy is on,
        nothing otherwise (the results are then filtered by key_read)."""
        return not self.enable_key_list_policy or self.key_list(prefix)

    def key_write(self, key: str) -> bool:
        return self.allowed("key", key, WRITE)

    def key_write_prefix(self, prefix: str) -> bool:
        """For recursive deletes: write on the prefix and no rule under it that is not write."""
        table = self._tables["key"]
        covering = table.longest_prefix(prefix)
        if covering is None:
            if not self.default_allow:
                return False
        elif covering != WRITE:
            return False
        return all(access == WRITE for access in table.under(prefix))

    def keyring_read(self) -> bool:
        return self.allowed("keyring", "", READ)

    def keyring_write(self) -> bool:
        return self.allowed("keyring", "", WRITE)

    def mesh_read(self) -> bool:
        return self.allowed("mesh", "", READ)

    def mesh_write(self) -> bool:
        return self.allowed("mesh", "", WRITE)

    def peering_read(self) -> bool:
        return self.allowed("peering", "", READ)

    def peering_write(self) -> bool:
        return self.allowed("peering", "", WRITE)

    def node_read(self, node: str) -> bool:
        return self.allowed("node", node, READ)

    def node_write(self, node: str) -> bool:
        return self.allowed("node", node, WRITE)

    def operator_read(self) -> bool:
        return self.allowed("operator", "", READ)

    def operator_write(self) -> bool:
        return self.allowed("operator", "", WRITE)

    def query_read(self, name: str) -> bool:
        return self.allowed("query", name, READ)

    def query_write(self, name: str) -> bool:
        return self.allowed("query", name, WRITE)

    def service_read(self, name: str) -> bool:
        return self.allowed("service", name, READ)

    def service_write(self, name: str) -> bool:
        return self.allowed("service", name, WRITE)

    def session_read(self, node: str) -> bool:
        return self.allowed("session", node, READ)

    def session_write(self, node: str) -> bool:
        return self.allowed("session", node, WRITE)


def _intentions_of(policy: str) -> str:
    """A service rule without `intentions` gives read on them (deny when the rule denies)."""
    return DENY if policy == DENY else READ


class ManagementAuthorizer(Authorizer):
    """Allows everything (global-management tokens, the agent recovery token)."""

    def __init__(self) -> None:
        super().__init__(default_policy="allow")

    def allowed(self, resource: str, segment: str, access: str) -> bool:
        return True

    def key_write_prefix(self, prefix: str) -> bool:
        return True


class AllowAllAuthorizer(ManagementAuthorizer):
    """What `down_policy = "allow"` hands out while the servers cannot be reached."""


class DenyAllAuthorizer(Authorizer):
    """Refuses everything (`down_policy = "deny"`, or nothing cached to extend)."""

    def __init__(self) -> None:
        super().__init__(default_policy="deny")

    def allowed(self, resource: str, segment: str, access: str) -> bool:
        return False

    def key_write_prefix(self, prefix: str) -> bool:
        return False
