"""Built-in ACL objects and the synthetic policies of service and node identities.

Identities let a token say "I am service web" without anyone writing a policy; what that grants
is fixed here so every server computes the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from consulpy.acl.rules import READ, WRITE, PolicyRules, Rule, parse_rules

GLOBAL_MANAGEMENT_POLICY_ID = "00000000-0000-0000-0000-000000000001"
GLOBAL_MANAGEMENT_POLICY_NAME = "global-management"
GLOBAL_READ_ONLY_POLICY_ID = "00000000-0000-0000-0000-000000000002"
GLOBAL_READ_ONLY_POLICY_NAME = "builtin/global-read-only"
ANONYMOUS_TOKEN_ACCESSOR_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_TOKEN_SECRET_ID = "anonymous"
RESERVED_ID_PREFIX = "00000000-0000-0000-0000-0000000000"

_BUILTIN_TEMPLATE = """\
acl = "{acl}"
agent_prefix "" {{ policy = "{a}" }}
event_prefix "" {{ policy = "{a}" }}
key_prefix "" {{ policy = "{a}" }}
keyring = "{a}"
node_prefix "" {{ policy = "{a}" }}
operator = "{a}"
mesh = "{a}"
peering = "{a}"
query_prefix "" {{ policy = "{a}" }}
service_prefix "" {{ policy = "{a}" intentions = "{a}" }}
session_prefix "" {{ policy = "{a}" }}
"""

GLOBAL_MANAGEMENT_RULES_TEXT = _BUILTIN_TEMPLATE.format(acl=WRITE, a=WRITE)
GLOBAL_READ_ONLY_RULES_TEXT = _BUILTIN_TEMPLATE.format(acl=READ, a=READ)


@cache
def global_management_rules() -> PolicyRules:
    """The parsed rules of the global-management policy (parsed on first use: the HCL parser
    costs tens of milliseconds to build, which an agent without ACLs never needs to pay)."""
    return parse_rules(GLOBAL_MANAGEMENT_RULES_TEXT)


@cache
def global_read_only_rules() -> PolicyRules:
    """The parsed rules of the builtin global-read-only policy."""
    return parse_rules(GLOBAL_READ_ONLY_RULES_TEXT)


def applies_in(datacenters: Sequence[str], datacenter: str) -> bool:
    """A policy or identity with no datacenters applies everywhere."""
    return not datacenters or datacenter in datacenters


def service_identity_rules(name: str, datacenters: Sequence[str] = ()) -> PolicyRules:
    """What a service identity grants: write on the service and its sidecar, read on all
    services and nodes (for discovery). `datacenters` is where it applies; see `applies_in`."""
    del datacenters  # scoping is the resolver's job; the rules are the same everywhere
    return PolicyRules(
        (
            Rule("service", name, False, WRITE),
            Rule("service", f"{name}-sidecar-proxy", False, WRITE),
            Rule("service", "", True, READ),
            Rule("node", "", True, READ),
        )
    )


def node_identity_rules(name: str, datacenter: str = "") -> PolicyRules:
    """What a node identity grants: write on the node, read on all services."""
    del datacenter  # a node identity applies only in its datacenter; the resolver checks
    return PolicyRules((Rule("node", name, False, WRITE), Rule("service", "", True, READ)))
