"""The ACL rule language: policy text (HCL or JSON) -> immutable `PolicyRules`.

Parsing is strict: an unknown rule type, an unknown field in a rule body or a disposition the
rule does not take is a `RuleError`, never silently dropped (a rule a user wrote and we ignored
would grant or deny something they did not mean). Texts follow Consul's
(`Failed to parse ACL rules: ...`, `Invalid <rule> policy: ...`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from consulpy.config.errors import ConfigError
from consulpy.config.hcl import parse_hcl

READ = "read"
LIST = "list"
WRITE = "write"
DENY = "deny"

# How strong a disposition is when two rules for the same label meet: deny > write > list > read.
STRENGTH = {READ: 1, LIST: 2, WRITE: 3, DENY: 4}

# Rules without a label: `acl = "write"`.
UNLABELLED = ("acl", "keyring", "mesh", "operator", "peering")
# Rules with a label, each with an exact and a `_prefix` form.
LABELLED = ("agent", "event", "key", "node", "query", "service", "session")
ENTERPRISE = ("namespace", "namespace_prefix", "partition", "partition_prefix")


# The field a rule's label lands in, as Consul names it in its `Invalid ... policy` texts.
_LABEL_FIELD = {
    "agent": "Node",
    "event": "Event",
    "key": "Prefix",
    "node": "Name",
    "query": "Prefix",
    "service": "Name",
    "session": "Node",
}


class RuleError(ValueError):
    """Policy text that is not valid; `str()` is the text a user sees (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: `resource` ("key", "acl", ...), its label (`segment`, "" when unlabelled),
    whether it is a `_prefix` rule, the disposition, and for services the intentions one."""

    resource: str
    segment: str
    prefix: bool
    access: str
    intentions: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The parsed rules of one policy (or one synthetic identity policy), in source order."""

    rules: tuple[Rule, ...] = ()

    def __add__(self, other: PolicyRules) -> PolicyRules:
        return PolicyRules(self.rules + other.rules)


def parse_rules(text: str) -> PolicyRules:
    """Parse policy rules in HCL or JSON; empty text is an empty policy."""
    if not text.strip():
        return PolicyRules()
    data = _load(text)
    rules: list[Rule] = []
    for kind, value in data.items():
        if kind in UNLABELLED:
            if value != "":  # Consul reads an empty disposition here as "no rule"
                rules.append(_unlabelled(kind, value))
        elif kind in LABELLED or (kind.endswith("_prefix") and kind[: -len("_prefix")] in LABELLED):
            rules.extend(_labelled(kind, value))
        elif kind in ENTERPRISE:
            raise RuleError(
                f"Failed to parse ACL rules: {kind} rules are only available in Consul Enterprise"
            )
        else:
            raise RuleError(f'Failed to parse ACL rules: unknown rule type "{kind}"')
    return PolicyRules(tuple(rules))


def _load(text: str) -> dict[str, Any]:
    # JSON rules (text starting with "{") go through the one JSON path: depth, finite
    # numbers, valid text (consulpy.util.decode.parse_json).
    try:
        return parse_hcl(text, "rules")
    except ConfigError as exc:
        reason = "; ".join(e.removeprefix("Error parsing rules: ") for e in exc.errors)
        raise RuleError(f"Failed to parse ACL rules: {reason}") from None


def _valid(access: Any, allow_list: bool) -> bool:
    return access in (READ, WRITE, DENY) or (allow_list and access == LIST)


def _unlabelled(kind: str, value: Any) -> Rule:
    if not isinstance(value, str):
        raise RuleError(
            f'Failed to parse ACL rules: {kind} must be a string, as in {kind} = "read"'
        )
    if not _valid(value, False):
        raise RuleError(f"Invalid {kind} policy: {json.dumps(value)}")
    return Rule(kind, "", False, value)


def _labelled(kind: str, value: Any) -> list[Rule]:
    prefix = kind.endswith("_prefix")
    resource = kind.removesuffix("_prefix")
    items: list[tuple[str, Any]] = []
    for block in value if isinstance(value, list) else [value]:
        if not isinstance(block, dict):
            raise RuleError(
                f'Failed to parse ACL rules: {kind} needs a label and a body, as in {kind} "name" '
                '{ policy = "read" }'
            )
        items.extend(block.items())
    out = []
    for segment, body in items:
        for one in body if isinstance(body, list) else [body]:
            out.append(_labelled_rule(kind, resource, prefix, str(segment), one))
    return out


def _labelled_rule(kind: str, resource: str, prefix: bool, segment: str, body: Any) -> Rule:
    label = _LABEL_FIELD[resource]
    if not isinstance(body, dict):
        raise RuleError(
            f'Failed to parse ACL rules: {kind} "{segment}" needs a body, as in '
            '{ policy = "read" }'
        )
    allowed = {"policy", "intentions"} if resource == "service" else {"policy"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RuleError(
            f'Failed to parse ACL rules: {kind} "{segment}": unknown field "{unknown[0]}"'
        )
    access = body.get("policy", "")
    intentions = body.get("intentions")
    if not _valid(access, resource == "key"):
        raise RuleError(
            f"Invalid {kind} policy: {{{label}:{json.dumps(segment)}, Policy:{json.dumps(access)}}}"
        )
    if intentions is not None and not _valid(intentions, False):
        raise RuleError(
            f"Invalid {kind} intentions policy: {{{label}:{json.dumps(segment)}, "
            f"Intentions:{json.dumps(intentions)}}}"
        )
    return Rule(resource, segment, prefix, access, intentions)
