"""The one place an endpoint asks whether the caller may do what it asks.

Every endpoint calls `authorize` after validating its request and before touching the state
or proposing a command. Today it allows everything; the ACL issue resolves `token` into an
authorizer here (on the servers, as Consul does) and raises PermissionDenied.
"""

from __future__ import annotations

from typing import Literal

from consulpy.server.errors import CommandError

Access = Literal["read", "write"]


class PermissionDenied(CommandError):
    """The token may not do this (HTTP 403 "Permission denied", once ACLs exist)."""

    def __str__(self) -> str:
        return "Permission denied"


def authorize(token: str, resource: str, access: Access) -> None:
    """Allow or refuse `access` to `resource` ("key:<k>", "session:<node>", "service:<s>",
    "node:<n>", "operator", "mesh", ...) for `token`. Allows everything until ACLs exist."""
    del token, resource, access
