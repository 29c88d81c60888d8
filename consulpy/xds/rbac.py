"""Envoy RBAC rules from intentions (the public listener's authorization).

Intentions are an ordered list: the first one whose source matches decides, and anything
unmatched falls to the default policy. Envoy's RBAC has no order: a rule set is either an
allow-list or a deny-list of policies that are ORed. The translation therefore:

1. keeps only the first intention of each source (a lower one with the same source can never
   decide anything);
2. picks the list type from the default: default-deny -> allow-list (``ALLOW``), default-allow
   -> deny-list (``DENY``);
3. removes precedence: an intention below one whose source covers its own never decides
   anything and goes (``api -> *`` under ``* -> web``); every other intention gets
   ``AND NOT <source>`` for each higher-precedence intention whose source is strictly more
   specific and whose action differs (an L7 intention differs from everything); then the
   intentions whose action equals the default are dropped, since the default already does
   what they say. (Subtracting a same-action source too would change nothing: either both
   stay in the ORed list or both go.)
4. L7 intentions (``Permissions``) get the same treatment at the permission level, one policy
   each (``consul-intentions-layer7-<n>``); all L4 principals share one policy
   (``consul-intentions-layer4``). In the network (TCP) filter an L7 intention is a deny.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consulpy.xds.matchers import header_matcher, methods_matcher
from consulpy.xds.protoutil import HTTP_RBAC, NETWORK_RBAC, extension, re2_escape

WILDCARD = "*"
DEFAULT_NAMESPACE = "default"
ANY_SEGMENT = "[^/]+"
ALLOW, DENY, L7 = "allow", "deny", "l7"
L4_POLICY = "consul-intentions-layer4"
L7_POLICY = "consul-intentions-layer7-{}"
STAT_PREFIX = "connect_authz"


@dataclass(frozen=True)
class Source:
    namespace: str
    name: str

    def wildcards(self) -> int:
        """0 = exact, 1 = ``ns/*``, 2 = ``*/*`` (a wildcard namespace implies a wildcard name)."""
        if self.namespace == WILDCARD:
            return 2
        return 1 if self.name == WILDCARD else 0

    def within(self, other: Source) -> bool:
        """Whether every service this source names is also named by ``other``, which is
        strictly wider."""
        if self.wildcards() >= other.wildcards():
            return False
        ns_ok = other.namespace in (WILDCARD, self.namespace)
        name_ok = other.name in (WILDCARD, self.name)
        return ns_ok and name_ok

    def covers(self, other: Source) -> bool:
        """Whether this source names every service ``other`` names (itself included)."""
        return self == other or other.within(self)


@dataclass
class _Permission:
    action: str
    rule: dict[str, Any]
    minus: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Intention:
    source: Source
    action: str
    permissions: list[_Permission] = field(default_factory=list)
    minus: list[Source] = field(default_factory=list)


def _differs(a: str, b: str) -> bool:
    return a != b or a == L7


def _source(ixn: dict[str, Any]) -> Source:
    return Source(ixn.get("SourceNS") or DEFAULT_NAMESPACE, ixn.get("SourceName", ""))


def _intermediate(intentions: tuple[dict[str, Any], ...], http: bool) -> list[_Intention]:
    ordered = sorted(intentions, key=lambda ixn: -int(ixn.get("Precedence", 0)))
    seen: set[Source] = set()
    out: list[_Intention] = []
    for ixn in ordered:
        src = _source(ixn)
        if src in seen:
            continue
        seen.add(src)
        perms = ixn.get("Permissions") or []
        if perms and http:
            out.append(
                _Intention(
                    src,
                    L7,
                    [_Permission(p.get("Action", DENY), http_permission(p)) for p in perms],
                )
            )
        elif perms:
            out.append(_Intention(src, DENY))
        else:
            out.append(_Intention(src, ALLOW if ixn.get("Action") == ALLOW else DENY))
    return out


def _remove_source_precedence(ixns: list[_Intention], default: str) -> list[_Intention]:
    """Make the order irrelevant: an intention decides for exactly the peers no higher one
    matches. Sources nest (``web`` inside ``default/*`` inside ``*/*``), so a higher source
    either lies inside a lower one (subtract it) or covers it (the lower one never decides)."""
    effective: list[_Intention] = []
    for low in ixns:
        if any(high.source.covers(low.source) for high in effective):
            continue
        low.minus = [
            high.source
            for high in effective
            if high.source.within(low.source) and _differs(high.action, low.action)
        ]
        effective.append(low)
    return [ixn for ixn in effective if ixn.action != default]


def _remove_permission_precedence(perms: list[_Permission], default: str) -> list[_Permission]:
    for i, high in enumerate(perms):
        for low in perms[i + 1 :]:
            if high.action != low.action:
                low.minus.append(high.rule)
    return [p for p in perms if p.action != default]


def principal_pattern(trust_domain: str, source: Source) -> str:
    """The RE2 pattern for a source's SPIFFE IDs, in any datacenter of our trust domain."""
    ns = ANY_SEGMENT if source.namespace == WILDCARD else re2_escape(source.namespace)
    name = ANY_SEGMENT if source.name == WILDCARD else re2_escape(source.name)
    return f"^spiffe://{re2_escape(trust_domain)}/ns/{ns}/dc/{ANY_SEGMENT}/svc/{name}$"


def _id_principal(trust_domain: str, source: Source) -> dict[str, Any]:
    regex = principal_pattern(trust_domain, source)
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": regex}}}}


def _simplify(minus: list[Source]) -> list[Source]:
    """Drop subtracted sources already covered by a wider subtracted source."""
    out: list[Source] = []
    for src in minus:
        if src in out or any(src.within(other) for other in minus):
            continue
        out.append(src)
    return out


def _principal(trust_domain: str, ixn: _Intention) -> dict[str, Any]:
    minus = _simplify(ixn.minus)
    base = _id_principal(trust_domain, ixn.source)
    if not minus:
        return base
    ids = [base] + [{"not_id": _id_principal(trust_domain, src)} for src in minus]
    return {"and_ids": {"ids": ids}}


def _and_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    if not rules:
        return {"any": True}
    if len(rules) == 1:
        return rules[0]
    return {"and_rules": {"rules": rules}}


def http_permission(perm: dict[str, Any]) -> dict[str, Any]:
    """One ``Permissions[]`` entry as an RBAC permission (its parts ANDed)."""
    http = perm.get("HTTP") or {}
    parts: list[dict[str, Any]] = []
    if http.get("PathExact"):
        parts.append({"url_path": {"path": {"exact": http["PathExact"]}}})
    elif http.get("PathPrefix"):
        parts.append({"url_path": {"path": {"prefix": http["PathPrefix"]}}})
    elif http.get("PathRegex"):
        parts.append({"url_path": {"path": {"safe_regex": {"regex": http["PathRegex"]}}}})
    for spec in http.get("Header") or []:
        matcher = header_matcher(spec)
        if matcher is not None:
            parts.append({"header": matcher})
    if http.get("Methods"):
        parts.append({"header": methods_matcher(http["Methods"])})
    return _and_rules(parts)


def rbac_rules(
    intentions: tuple[dict[str, Any], ...],
    default_allow: bool,
    trust_domain: str,
    *,
    http: bool,
) -> dict[str, Any]:
    """The ``RBAC`` message (config.rbac.v3) enforcing ``intentions`` for one destination."""
    default = ALLOW if default_allow else DENY
    ixns = _remove_source_precedence(_intermediate(intentions, http), default)
    for ixn in ixns:
        if ixn.action == L7:
            ixn.permissions = _remove_permission_precedence(ixn.permissions, default)
    ixns = [ixn for ixn in ixns if ixn.action != L7 or ixn.permissions]

    policies: dict[str, Any] = {}
    l4_principals: list[dict[str, Any]] = []
    for n, ixn in enumerate(ixns):
        principal = _principal(trust_domain, ixn)
        if ixn.action == L7:
            permissions = [
                _and_rules([p.rule] + [{"not_rule": m} for m in p.minus]) for p in ixn.permissions
            ]
            policies[L7_POLICY.format(n)] = {
                "permissions": permissions,
                "principals": [principal],
            }
        else:
            l4_principals.append(principal)
    if l4_principals:
        policies[L4_POLICY] = {"permissions": [{"any": True}], "principals": l4_principals}
    rules: dict[str, Any] = {"action": "DENY" if default_allow else "ALLOW"}
    if policies:
        rules["policies"] = policies
    return rules


def network_filter(
    intentions: tuple[dict[str, Any], ...], default_allow: bool, trust_domain: str
) -> dict[str, Any]:
    rules = rbac_rules(intentions, default_allow, trust_domain, http=False)
    return extension(
        "envoy.filters.network.rbac", NETWORK_RBAC, {"stat_prefix": STAT_PREFIX, "rules": rules}
    )


def http_filter(
    intentions: tuple[dict[str, Any], ...], default_allow: bool, trust_domain: str
) -> dict[str, Any]:
    rules = rbac_rules(intentions, default_allow, trust_domain, http=True)
    return extension("envoy.filters.http.rbac", HTTP_RBAC, {"rules": rules})
