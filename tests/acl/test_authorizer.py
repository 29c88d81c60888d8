"""Authorizer decisions: precedence, merging, fallbacks, key list, intentions, texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consulpy.acl.authorizer import (
    AllowAllAuthorizer,
    Authorizer,
    DenyAllAuthorizer,
    ManagementAuthorizer,
    permission_denied_text,
)
from consulpy.acl.identities import (
    global_management_rules,
    global_read_only_rules,
    node_identity_rules,
    service_identity_rules,
)
from consulpy.acl.rules import parse_rules


def authz(*texts: str, default: str = "deny", key_list: bool = False) -> Authorizer:
    return Authorizer(
        [parse_rules(t) for t in texts], default_policy=default, enable_key_list_policy=key_list
    )


def test_exact_beats_prefix_whatever_their_dispositions() -> None:
    a = authz('key_prefix "" { policy = "deny" }', 'key "foo" { policy = "write" }')
    assert a.key_write("foo")
    assert not a.key_read("foo/bar")  # exact "foo" is not a prefix
    assert not a.key_read("fo")
    b = authz('key_prefix "foo" { policy = "write" }', 'key "foo" { policy = "deny" }')
    assert not b.key_read("foo")
    assert b.key_write("foo/bar")


def test_longest_prefix_wins() -> None:
    a = authz(
        'key_prefix "" { policy = "read" }',
        'key_prefix "app/" { policy = "write" }',
        'key_prefix "app/secret/" { policy = "deny" }',
    )
    assert a.key_read("other") and not a.key_write("other")
    assert a.key_write("app/config")
    assert not a.key_read("app/secret/pw")
    assert a.key_write("app/secre")


def test_deny_wins_on_equal_label_across_policies() -> None:
    a = authz('service "web" { policy = "write" }', 'service "web" { policy = "deny" }')
    assert not a.service_read("web")
    b = authz('node_prefix "n" { policy = "read" }', 'node_prefix "n" { policy = "write" }')
    assert b.node_write("n1")  # write beats read


def test_merge_order_is_deny_write_list_read() -> None:
    a = authz('key "k" { policy = "list" }', 'key "k" { policy = "read" }', key_list=True)
    assert a.key_list("k") and not a.key_write("k")
    b = authz('key "k" { policy = "list" }', 'key "k" { policy = "write" }')
    assert b.key_write("k")


def test_default_policy_applies_when_nothing_matches() -> None:
    assert authz('key "a" { policy = "read" }', default="allow").key_write("b")
    assert not authz('key "a" { policy = "read" }', default="deny").key_read("b")
    assert authz(default="allow").operator_write()
    # As in Consul, the acl resource is never granted by default_policy allow.
    assert not authz(default="allow").acl_read()
    assert authz('acl = "write"', default="deny").acl_write()
    assert not authz(default="deny").operator_read()


def test_levels_write_grants_list_and_read_list_grants_read() -> None:
    a = authz('key "w" { policy = "write" }', 'key "l" { policy = "list" }', key_list=True)
    assert a.key_read("w") and a.key_list("w") and a.key_write("w")
    assert a.key_read("l") and a.key_list("l") and not a.key_write("l")
    r = authz('key "r" { policy = "read" }', key_list=True)
    assert r.key_read("r") and not r.key_list("r")


def test_key_list_policy_setting() -> None:
    rules = 'key_prefix "" { policy = "read" }'
    assert authz(rules, key_list=False).key_list_allowed("a/")  # no list check when off
    assert not authz(rules, key_list=True).key_list_allowed("a/")
    assert authz('key_prefix "a/" { policy = "list" }', key_list=True).key_list_allowed("a/b")


def test_key_write_prefix_needs_write_and_no_other_rule_under_it() -> None:
    a = authz('key_prefix "app/" { policy = "write" }')
    assert a.key_write_prefix("app/")
    assert a.key_write_prefix("app/x/")
    assert not a.key_write_prefix("")  # not covered; default deny
    b = authz('key_prefix "app/" { policy = "write" }', 'key "app/locked" { policy = "read" }')
    assert b.key_write("app/x")
    assert not b.key_write_prefix("app/")
    assert b.key_write_prefix("app/x")
    c = authz('key "app/locked" { policy = "deny" }', default="allow")
    assert not c.key_write_prefix("app/")
    assert c.key_write_prefix("other/")
    d = authz('key_prefix "app/" { policy = "read" }', 'key_prefix "app/w/" { policy = "write" }')
    assert not d.key_write_prefix("app/")
    assert d.key_write_prefix("app/w/")


def test_mesh_and_peering_fall_back_to_operator() -> None:
    a = authz('operator = "write"')
    assert a.mesh_write() and a.peering_write()
    b = authz('operator = "write"', 'mesh = "read"', 'peering = "deny"')
    assert b.mesh_read() and not b.mesh_write()
    assert not b.peering_read()
    c = authz('operator = "read"', default="allow")
    assert c.mesh_read() and not c.mesh_write()


def test_intentions_sub_policy() -> None:
    a = authz(
        'service "web" { policy = "write" }',
        'service "db" { policy = "read" intentions = "write" }',
        'service "x" { policy = "deny" }',
        'service_prefix "api-" { policy = "write" intentions = "deny" }',
    )
    assert a.intention_read("web") and not a.intention_write("web")
    assert a.intention_write("db") and not a.service_write("db")
    assert not a.intention_read("x")
    assert a.service_write("api-1") and not a.intention_read("api-1")
    assert not a.intention_read("unknown")  # default deny


def test_every_typed_helper_matches_the_general_check() -> None:
    a = authz(default="deny")
    ro = Authorizer([global_read_only_rules()], default_policy="deny")
    for name in ("acl", "keyring", "mesh", "operator", "peering"):
        assert getattr(ro, f"{name}_read")() and not getattr(ro, f"{name}_write")()
        assert not getattr(a, f"{name}_read")()
    for name in ("agent", "event", "intention", "key", "node", "query", "service", "session"):
        assert getattr(ro, f"{name}_read")("anything") and not getattr(ro, f"{name}_write")("x")


def test_global_management_rules_allow_everything() -> None:
    gm = Authorizer([global_management_rules()], default_policy="deny")
    for check in ("acl", "keyring", "mesh", "operator", "peering"):
        assert getattr(gm, f"{check}_write")()
    for check in ("agent", "event", "intention", "key", "node", "query", "service", "session"):
        assert getattr(gm, f"{check}_write")("anything")
    assert gm.key_write_prefix("")


def test_management_allow_all_and_deny_all() -> None:
    for everything in (ManagementAuthorizer(), AllowAllAuthorizer()):
        assert everything.allowed("acl", "", "write") and everything.key_write_prefix("")
    nothing = DenyAllAuthorizer()
    assert not nothing.allowed("key", "a", "read") and not nothing.key_write_prefix("a")


def test_unknown_resource_or_level_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        authz().allowed("kv", "a", "read")
    with pytest.raises(ValueError):
        authz().allowed("key", "a", "admin")


def test_service_identity_expansion() -> None:
    a = Authorizer([service_identity_rules("web", ["dc1"])], default_policy="deny")
    assert a.service_write("web") and a.service_write("web-sidecar-proxy")
    assert a.service_read("db") and not a.service_write("db")
    assert a.node_read("n1") and not a.node_write("n1")
    assert a.intention_read("web") and not a.intention_write("web")
    assert not a.key_read("k")


def test_node_identity_expansion() -> None:
    a = Authorizer([node_identity_rules("n1", "dc1")], default_policy="deny")
    assert a.node_write("n1") and not a.node_read("n2")
    assert a.service_read("web") and not a.service_write("web")


def test_permission_denied_texts() -> None:
    acc = "a1b2c3d4-0000-4000-8000-000000000001"
    assert permission_denied_text(acc, "key", "write", "foo") == (
        f"Permission denied: token with AccessorID '{acc}' lacks permission 'key:write' on \"foo\""
    )
    assert permission_denied_text(acc, "operator", "read") == (
        f"Permission denied: token with AccessorID '{acc}' lacks permission 'operator:read'"
    )
    anon = permission_denied_text("00000000-0000-0000-0000-000000000002", "node", "read", "n")
    assert anon == (
        "Permission denied: anonymous token lacks permission 'node:read' on \"n\". The anonymous "
        "token is used implicitly when a request does not specify a token."
    )


segments = st.text(alphabet="ab/", max_size=6)
dispositions = st.sampled_from(["read", "write", "deny"])


@given(
    key=segments,
    exact=dispositions,
    prefixes=st.lists(st.tuples(segments, dispositions), max_size=5),
    default=st.sampled_from(["allow", "deny"]),
)
def test_exact_rule_always_wins_over_any_prefix_rule(
    key: str, exact: str, prefixes: list[tuple[str, str]], default: str
) -> None:
    texts = [f'key_prefix "{p}" {{ policy = "{d}" }}' for p, d in prefixes]
    texts.append(f'key "{key}" {{ policy = "{exact}" }}')
    a = authz(*texts, default=default)
    assert a.key_read(key) == (exact != "deny")
    assert a.key_write(key) == (exact == "write")


@given(
    key=segments,
    prefixes=st.lists(st.tuples(segments, dispositions), min_size=1, max_size=5),
)
def test_the_longest_matching_prefix_decides(key: str, prefixes: list[tuple[str, str]]) -> None:
    a = authz(*[f'key_prefix "{p}" {{ policy = "{d}" }}' for p, d in prefixes])
    matching = [(p, d) for p, d in prefixes if key.startswith(p)]
    if not matching:
        assert not a.key_read(key)
        return
    longest = max(len(p) for p, _ in matching)
    ranks = {"read": 1, "write": 3, "deny": 4}
    winner = max((d for p, d in matching if len(p) == longest), key=ranks.__getitem__)
    assert a.key_write(key) == (winner == "write")
    assert a.key_read(key) == (winner != "deny")


def test_explicit_intentions_merge_apart_from_the_service_disposition() -> None:
    """As Consul merges policies: the strongest explicit `intentions` wins; only a merged rule
    with none takes them from its (merged) service disposition."""
    a = authz(
        'service "web" { policy = "deny" }',
        'service "web" { policy = "read" intentions = "write" }',
    )
    assert not a.service_read("web")
    assert a.intention_write("web")
    b = authz('service "web" { policy = "write" }', 'service "web" { policy = "deny" }')
    assert not b.intention_read("web")
