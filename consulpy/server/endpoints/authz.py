"""The one place an endpoint asks whether the caller may do what it asks.

Every endpoint calls `authorize` after validating its request and before touching the state
or proposing a command; reads declare what they need and the server's read path asks before
querying the store. Today it allows everything; the ACL issue resolves `token` into an
authorizer here (on the servers, as Consul does) and raises PermissionDenied.

Resources are the rule names of Consul's ACL language (`key`, `service`, `node`, ...); the
segment is what the rule is labelled with (a key path, a service or node name) or "" for the
unlabelled ones (`operator`, `mesh`, `acl`, `keyring`). `intention` is the `intentions`
disposition of the `service` rule on the destination service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from consulpy.server.errors import CommandError


class Resource(Enum):
    ACL = "acl"
    AGENT = "agent"
    EVENT = "event"
    INTENTION = "intention"  # the `intentions` disposition of a `service` rule
    KEY = "key"
    KEYRING = "keyring"
    MESH = "mesh"
    NODE = "node"
    OPERATOR = "operator"
    QUERY = "query"
    SERVICE = "service"
    SESSION = "session"  # labelled with a node name, as in Consul


class Access(Enum):
    READ = "read"
    LIST = "list"  # key_prefix list (only with enable_key_list_policy)
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Need:
    """One permission a request needs: `access` to `resource` labelled `segment`.

    `filtered`: Consul answers this read with the items the token may see (per item, on
    `resource`) instead of refusing it; `segment` is then "" and the ACL work filters."""

    resource: Resource
    segment: str
    access: Access
    filtered: bool = False


class PermissionDenied(CommandError):
    """The token may not do this (HTTP 403 "Permission denied", once ACLs exist)."""

    def __str__(self) -> str:
        return "Permission denied"


Authorizer = Callable[[str, Resource, str, Access], None]


def allow_all(token: str, resource: Resource, segment: str, access: Access) -> None:
    del token, resource, segment, access


# The ACL issue replaces this with its token-resolving authorizer (tests record through it).
_authorizer: Authorizer = allow_all


def set_authorizer(fn: Authorizer) -> Authorizer:
    """Install `fn` as the authorizer; returns the previous one."""
    global _authorizer
    previous, _authorizer = _authorizer, fn
    return previous


def authorize(token: str, resource: Resource, segment: str, access: Access) -> None:
    """Allow or refuse `access` to `resource` labelled `segment` for `token` (raise
    PermissionDenied). Allows everything until ACLs exist."""
    _authorizer(token, resource, segment, access)
