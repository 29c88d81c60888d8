"""The one place an endpoint asks whether the caller may do what it asks.

Every endpoint calls `authorize` after validating its request and before touching the state
or proposing a command; reads declare what they need and the server's read path asks before
querying the store. With ACLs on, the server resolves the request's token once (async, cached)
and makes the identity current for the request (`acl_context`, a ContextVar: several servers may
share a process); `authorize` then is a sync check of that identity. Nothing current (ACLs off,
or an in-process call outside a request) allows everything.

Resources are the rule names of Consul's ACL language (`key`, `service`, `node`, ...); the
segment is what the rule is labelled with (a key path, a service or node name) or "" for the
unlabelled ones (`operator`, `mesh`, `acl`, `keyring`). `intention` is the `intentions`
disposition of the `service` rule on the destination service.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum

from consulpy.acl.authorizer import permission_denied_text
from consulpy.acl.resolver import Resolved
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
    """The token may not do this: HTTP 403 with Consul's text (`Permission denied: ...`)."""

    def __init__(self, text: str = "Permission denied") -> None:
        super().__init__(text)


class ACLNotFoundError(CommandError):
    """The request's token is unknown or expired: HTTP 403 "ACL not found" (Consul)."""

    def __init__(self, text: str = "ACL not found") -> None:
        super().__init__(text)


# Unlabelled resources: Consul's text names no segment for them.
_UNLABELLED = frozenset({Resource.ACL, Resource.OPERATOR, Resource.MESH, Resource.KEYRING})

# The identity of the request being served (None: ACLs off, allow everything).
_current: ContextVar[Resolved | None] = ContextVar("consulpy_acl_identity", default=None)


class acl_context:  # used as a function: `with acl_context(identity):`
    """Make `identity` the one `authorize` checks for the code run inside (a plain class, not
    a generator context manager: it runs on every request)."""

    __slots__ = ("_identity", "_reset")

    def __init__(self, identity: Resolved | None) -> None:
        self._identity = identity

    def __enter__(self) -> None:
        self._reset = _current.set(self._identity)

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._reset)


def current_identity() -> Resolved | None:
    """The identity of the request being served, None when ACLs are off."""
    return _current.get()


def allowed(resource: Resource, segment: str, access: Access) -> bool:
    """Whether the current identity may do it (no exception; for filtering lists)."""
    identity = _current.get()
    if identity is None:
        return True
    return identity.authorizer.allowed(resource.value, segment, access.value)


def denied(resource: Resource, segment: str, access: Access) -> PermissionDenied:
    """The 403 for a refused check of the current identity."""
    identity = _current.get()
    accessor = identity.accessor_id if identity is not None else ""
    where = None if resource in _UNLABELLED else segment
    return PermissionDenied(permission_denied_text(accessor, resource.value, access.value, where))


Authorizer = Callable[[str, Resource, str, Access], None]


def allow_all(token: str, resource: Resource, segment: str, access: Access) -> None:
    del token, resource, segment, access


# The ACL issue replaces this with its token-resolving authorizer (tests record through it).
_authorizer: Authorizer = allow_all


def enforcing() -> bool:
    """Whether `authorize` can refuse or record anything now: an identity is current (ACLs
    on) or an authorizer is installed. When not, callers may skip building their checks."""
    return _authorizer is not allow_all or _current.get() is not None


def set_authorizer(fn: Authorizer) -> Authorizer:
    """Install `fn` as the authorizer; returns the previous one."""
    global _authorizer
    previous, _authorizer = _authorizer, fn
    return previous


def authorize(
    token: str, resource: Resource, segment: str, access: Access, *, filtered: bool = False
) -> None:
    """Allow or refuse `access` to `resource` labelled `segment` for the request's identity
    (raise PermissionDenied with Consul's text). `key:list` counts only with
    enable_key_list_policy, as in Consul. `filtered`: a Need.filtered read, checked per item
    on the result instead (server/acl_filter.py), so nothing is refused here."""
    _authorizer(token, resource, segment, access)
    identity = _current.get()
    if identity is None or filtered:
        return
    auth = identity.authorizer
    if resource is Resource.KEY and access is Access.LIST:
        if not auth.key_list_allowed(segment):
            raise denied(resource, segment, access)
        return
    if not auth.allowed(resource.value, segment, access.value):
        raise denied(resource, segment, access)


def authorize_key_write_prefix(prefix: str) -> None:
    """A recursive delete: write on `prefix` and no weaker rule below it (Consul)."""
    identity = _current.get()
    if identity is not None and not identity.authorizer.key_write_prefix(prefix):
        raise denied(Resource.KEY, prefix, Access.WRITE)
