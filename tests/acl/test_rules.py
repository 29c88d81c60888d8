"""The rule parser: every resource in HCL and JSON, and Consul's error texts."""

from __future__ import annotations

import json

import pytest

from consulpy.acl.rules import PolicyRules, Rule, RuleError, parse_rules

LABELLED = ["agent", "event", "key", "node", "query", "service", "session"]
UNLABELLED = ["acl", "keyring", "mesh", "operator", "peering"]


@pytest.mark.parametrize("kind", LABELLED)
@pytest.mark.parametrize("prefix", [False, True])
@pytest.mark.parametrize("access", ["read", "write", "deny"])
def test_labelled_rule_in_hcl_and_json(kind: str, prefix: bool, access: str) -> None:
    name = f"{kind}_prefix" if prefix else kind
    want = PolicyRules((Rule(kind, "web/a", prefix, access),))
    assert parse_rules(f'{name} "web/a" {{ policy = "{access}" }}') == want
    assert parse_rules(json.dumps({name: {"web/a": {"policy": access}}})) == want


@pytest.mark.parametrize("kind", UNLABELLED)
@pytest.mark.parametrize("access", ["read", "write", "deny"])
def test_unlabelled_rule_in_hcl_and_json(kind: str, access: str) -> None:
    want = PolicyRules((Rule(kind, "", False, access),))
    assert parse_rules(f'{kind} = "{access}"') == want
    assert parse_rules(json.dumps({kind: access})) == want


def test_service_intentions_sub_policy() -> None:
    text = 'service "web" { policy = "read" intentions = "write" }'
    assert parse_rules(text) == PolicyRules((Rule("service", "web", False, "read", "write"),))
    as_json = '{"service_prefix": {"": {"policy": "write", "intentions": "deny"}}}'
    assert parse_rules(as_json).rules == (Rule("service", "", True, "write", "deny"),)


def test_several_rules_and_repeated_blocks_keep_source_order() -> None:
    rules = parse_rules(
        """
        key_prefix "" { policy = "deny" }
        key "foo" { policy = "write" }
        key "bar" { policy = "read" }
        operator = "read"
        """
    )
    assert [(r.resource, r.segment, r.prefix, r.access) for r in rules.rules] == [
        ("key", "", True, "deny"),
        ("key", "foo", False, "write"),
        ("key", "bar", False, "read"),
        ("operator", "", False, "read"),
    ]


def test_empty_text_is_an_empty_policy() -> None:
    assert parse_rules("") == PolicyRules()
    assert parse_rules("  \n") == PolicyRules()
    assert parse_rules("{}") == PolicyRules()
    assert parse_rules('acl = ""\noperator = ""') == PolicyRules()  # unset, as in Consul


def test_list_is_only_for_keys() -> None:
    assert parse_rules('key_prefix "a/" { policy = "list" }').rules[0].access == "list"
    with pytest.raises(RuleError, match=r'^Invalid node policy: .*"list"'):
        parse_rules('node "a" { policy = "list" }')
    with pytest.raises(RuleError, match=r'^Invalid acl policy: "list"$'):
        parse_rules('acl = "list"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('key "a" { policy = "nope" }', r'^Invalid key policy: .*"nope"'),
        ('key_prefix "a" { policy = "nope" }', r"^Invalid key_prefix policy: "),
        ('key "a" { }', r"^Invalid key policy: "),
        ('operator = "admin"', r'^Invalid operator policy: "admin"$'),
        ('service "a" { policy = "read" intentions = "list" }', r"^Invalid service intentions"),
        ('service "a" { policy = "readd" }', r"^Invalid service policy: "),
        ('key "a" {', r"^Failed to parse ACL rules: HCL syntax error"),
        ('{"key": ', r"^Failed to parse ACL rules: invalid JSON"),
        ("[1, 2]", r"^Failed to parse ACL rules: "),
        ('bogus = "read"', r'^Failed to parse ACL rules: unknown rule type "bogus"$'),
        ('node "a" { policy = "read" color = "red" }', r'unknown field "color"'),
        ('key "a" { policy = "read" intentions = "read" }', r'unknown field "intentions"'),
        ('acl { policy = "read" }', r"^Failed to parse ACL rules: acl must be a string"),
        ('{"key": {"a": "read"}}', r'^Failed to parse ACL rules: key "a" needs a body'),
        ('namespace "ns" { policy = "read" }', r"only available in Consul Enterprise"),
        ('partition_prefix "" { policy = "read" }', r"only available in Consul Enterprise"),
    ],
)
def test_errors_carry_consuls_texts(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rules(text)


def test_policy_rules_are_immutable() -> None:
    rules = parse_rules('acl = "read"')
    with pytest.raises(AttributeError):
        rules.rules = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rules.rules[0].access = "write"  # type: ignore[misc]
    assert hash(rules) == hash(parse_rules('acl = "read"'))
