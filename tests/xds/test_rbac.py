"""Intentions -> Envoy RBAC: the spec's shapes, and a property test that evaluating the
generated rules (with a small RBAC evaluator written here) gives the same answer as
intentions' first-match semantics, for L4 and L7.

``XDS_RBAC_EXAMPLES`` raises the number of generated cases (default 300).
"""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.xds import rbac
from tests.xds.samples import TD, intention

EXAMPLES = int(os.environ.get("XDS_RBAC_EXAMPLES", "300"))


def uri(service: str, td: str = TD, dc: str = "dc1") -> str:
    return f"spiffe://{td}/ns/default/dc/{dc}/svc/{service}"


# -- a minimal evaluator of config.rbac.v3 in proto-JSON form ---------------------------------


def _string(matcher: dict[str, Any], value: str) -> bool:
    if "exact" in matcher:
        return value == matcher["exact"]
    if "prefix" in matcher:
        return value.startswith(matcher["prefix"])
    if "suffix" in matcher:
        return value.endswith(matcher["suffix"])
    return re.fullmatch(matcher["safe_regex"]["regex"], value) is not None


def principal(p: dict[str, Any], peer: str) -> bool:
    if "any" in p:
        return True
    if "authenticated" in p:
        return _string(p["authenticated"]["principal_name"], peer)
    if "and_ids" in p:
        return all(principal(x, peer) for x in p["and_ids"]["ids"])
    if "or_ids" in p:
        return any(principal(x, peer) for x in p["or_ids"]["ids"])
    if "not_id" in p:
        return not principal(p["not_id"], peer)
    raise AssertionError(f"unexpected principal {p}")


def permission(p: dict[str, Any], req: dict[str, str]) -> bool:
    if "any" in p:
        return True
    if "and_rules" in p:
        return all(permission(x, req) for x in p["and_rules"]["rules"])
    if "or_rules" in p:
        return any(permission(x, req) for x in p["or_rules"]["rules"])
    if "not_rule" in p:
        return not permission(p["not_rule"], req)
    if "url_path" in p:
        return _string(p["url_path"]["path"], req[":path"])
    if "header" in p:
        h = p["header"]
        value = req.get(h["name"])
        if "present_match" in h:
            hit = value is not None
        else:
            hit = value is not None and _string(h["string_match"], value)
        return hit != bool(h.get("invert_match"))
    raise AssertionError(f"unexpected permission {p}")


def allows(rules: dict[str, Any], peer: str, req: dict[str, str] | None = None) -> bool:
    req = req or {":path": "/", ":method": "GET"}
    matched = any(
        any(permission(x, req) for x in pol["permissions"])
        and any(principal(x, peer) for x in pol["principals"])
        for pol in rules.get("policies", {}).values()
    )
    return matched if rules["action"] == "ALLOW" else not matched


# -- the reference: intentions evaluated in order ----------------------------------------------


def _http_match(http: dict[str, Any], req: dict[str, str]) -> bool:
    path = req[":path"]
    if "PathExact" in http and path != http["PathExact"]:
        return False
    if "PathPrefix" in http and not path.startswith(http["PathPrefix"]):
        return False
    if "PathRegex" in http and not re.fullmatch(http["PathRegex"], path):
        return False
    if "Methods" in http and req[":method"] not in http["Methods"]:
        return False
    for h in http.get("Header", []):
        present = h["Name"] in req
        if present == bool(h.get("Invert")):
            return False
    return True


def reference(intentions, source: str, default_allow: bool, http: bool, req) -> bool:
    ordered = sorted(intentions, key=lambda i: -i["Precedence"])
    for ixn in ordered:
        if ixn["SourceName"] not in (source, "*"):
            continue
        if not ixn.get("Permissions"):
            return ixn["Action"] == "allow"
        if not http:
            return False
        for perm in ixn["Permissions"]:
            if _http_match(perm["HTTP"], req):
                return perm["Action"] == "allow"
        return default_allow
    return default_allow


# -- shapes from the spec ------------------------------------------------------------------


def test_default_deny_subtracts_higher_precedence_deny() -> None:
    rules = rbac.rbac_rules(
        (intention("web", "deny", dest="db"), intention("*", "allow", dest="db")),
        default_allow=False,
        trust_domain=TD,
        http=False,
    )
    td = re.escape(TD).replace("\\-", "-")
    assert rules == {
        "action": "ALLOW",
        "policies": {
            "consul-intentions-layer4": {
                "permissions": [{"any": True}],
                "principals": [
                    {
                        "and_ids": {
                            "ids": [
                                {
                                    "authenticated": {
                                        "principal_name": {
                                            "safe_regex": {
                                                "regex": f"^spiffe://{td}/ns/default/dc/[^/]+/svc/[^/]+$"
                                            }
                                        }
                                    }
                                },
                                {
                                    "not_id": {
                                        "authenticated": {
                                            "principal_name": {
                                                "safe_regex": {
                                                    "regex": f"^spiffe://{td}/ns/default/dc/[^/]+/svc/web$"
                                                }
                                            }
                                        }
                                    }
                                },
                            ]
                        }
                    }
                ],
            }
        },
    }


def test_no_intentions() -> None:
    assert rbac.rbac_rules((), False, TD, http=False) == {"action": "ALLOW"}  # deny all
    assert rbac.rbac_rules((), True, TD, http=True) == {"action": "DENY"}  # allow all
    assert not allows({"action": "ALLOW"}, uri("web"))
    assert allows({"action": "DENY"}, uri("web"))


def test_same_action_as_default_is_dropped() -> None:
    rules = rbac.rbac_rules((intention("web", "allow"),), True, TD, http=False)
    assert rules == {"action": "DENY"}


def test_l7_is_a_deny_in_the_network_filter() -> None:
    l7 = intention("web", Permissions=[{"Action": "allow", "HTTP": {"PathPrefix": "/"}}])
    rules = rbac.rbac_rules((l7,), True, TD, http=False)
    assert list(rules["policies"]) == ["consul-intentions-layer4"]
    assert not allows(rules, uri("web"))
    assert allows(rules, uri("api"))


def test_policy_names() -> None:
    perms = [{"Action": "allow", "HTTP": {"PathPrefix": "/v1"}}]
    rules = rbac.rbac_rules(
        (
            intention("a", "allow"),
            intention("b", Permissions=perms),
            intention("c", Permissions=perms),
        ),
        False,
        TD,
        http=True,
    )
    # n counts the intentions that survive, L4 ones included (as Consul numbers them).
    assert sorted(rules["policies"]) == [
        "consul-intentions-layer4",
        "consul-intentions-layer7-1",
        "consul-intentions-layer7-2",
    ]


def test_principal_is_anchored_and_escaped() -> None:
    pattern = rbac.principal_pattern(TD, rbac.Source("default", "web.v2"))
    assert re.fullmatch(pattern, uri("web.v2"))
    assert not re.fullmatch(pattern, uri("webxv2"))
    assert not re.fullmatch(pattern, uri("web.v2", td="other.consul"))
    assert re.fullmatch(pattern, uri("web.v2", dc="dc9"))  # any datacenter
    assert not re.fullmatch(pattern, uri("web.v2") + "/x")


def test_lower_intention_for_the_same_source_is_ignored() -> None:
    # web -> web deny (9) wins over web -> * allow (6) for the same source.
    rules = rbac.rbac_rules(
        (intention("web", "deny"), intention("web", "allow", dest="*")), False, TD, http=False
    )
    assert not allows(rules, uri("web"))


# -- property: the rules behave like the ordered intentions ---------------------------------

SOURCES = ["web", "api", "db", "*"]
PEERS = ["web", "api", "db", "other"]
HTTP_MATCHES = st.sampled_from(
    [
        {"PathExact": "/admin"},
        {"PathPrefix": "/v1"},
        {"PathRegex": "/v[0-9]+/.*"},
        {"Methods": ["POST"]},
        {"PathPrefix": "/v1", "Methods": ["GET", "HEAD"]},
        {"Header": [{"Name": "x-debug", "Present": True}]},
        {"Header": [{"Name": "x-debug", "Present": True, "Invert": True}]},
    ]
)
PERMISSION = st.builds(
    lambda action, http: {"Action": action, "HTTP": http},
    st.sampled_from(["allow", "deny"]),
    HTTP_MATCHES,
)


@st.composite
def intention_sets(draw, http: bool):
    out = []
    for dest in ("web", "*"):
        sources = draw(st.lists(st.sampled_from(SOURCES), unique=True, max_size=4))
        for src in sources:
            if http and dest != "*" and draw(st.booleans()):
                perms = draw(st.lists(PERMISSION, min_size=1, max_size=3))
                out.append(intention(src, dest=dest, Permissions=perms))
            else:
                out.append(intention(src, draw(st.sampled_from(["allow", "deny"])), dest=dest))
    draw(st.randoms()).shuffle(out)
    return tuple(out)


REQUESTS = [
    {":path": path, ":method": method, **extra}
    for path in ("/", "/admin", "/v1/x", "/v2/y")
    for method in ("GET", "POST")
    for extra in ({}, {"x-debug": "1"})
]


@settings(max_examples=EXAMPLES, deadline=None)
@given(ixns=intention_sets(http=False), default_allow=st.booleans())
def test_l4_rules_match_first_match_semantics(ixns, default_allow) -> None:
    rules = rbac.rbac_rules(ixns, default_allow, TD, http=False)
    for peer in PEERS:
        want = reference(ixns, peer, default_allow, False, REQUESTS[0])
        assert allows(rules, uri(peer)) == want, (peer, ixns, rules)


@settings(max_examples=EXAMPLES, deadline=None)
@given(ixns=intention_sets(http=True), default_allow=st.booleans())
def test_l7_rules_match_first_match_semantics(ixns, default_allow) -> None:
    rules = rbac.rbac_rules(ixns, default_allow, TD, http=True)
    net = rbac.rbac_rules(ixns, default_allow, TD, http=False)
    for peer in PEERS:
        for req in REQUESTS:
            want = reference(ixns, peer, default_allow, True, req)
            assert allows(rules, uri(peer), req) == want, (peer, req, ixns, rules)
        assert allows(net, uri(peer)) == reference(ixns, peer, default_allow, False, REQUESTS[0])
