"""Session: Session.Apply (create, destroy), Session.Renew on the leader, and the reads.

The session ID is generated here, on the leader (as Consul's Session.Apply does), and the
destroy command carries the leader's clock: the lock-delay it starts is measured from there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import authorize
from consulpy.server.endpoints.base import leader, read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server

CREATE = "create"
DESTROY = "destroy"
# The fields of a session as the HTTP layer decoded them (ID is the server's to choose).
SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "Name": (str,),
    "Node": (str,),
    "LockDelay": (int,),
    "Behavior": (str,),
    "TTL": (str,),
    "NodeChecks": (list, type(None)),
    "ServiceChecks": (list, type(None)),
    "Checks": (list, type(None)),
}


@dataclass(frozen=True, slots=True)
class SessionApply:
    op: str
    session: dict[str, Any] = field(default_factory=dict)  # create: the session to create
    id: str = ""  # destroy: the session to destroy


@dataclass(frozen=True, slots=True)
class SessionRenew:
    id: str


def _validate_session(session: dict[str, Any]) -> dict[str, Any]:
    unknown = set(session) - set(SESSION_FIELDS) - {"ID"}
    if unknown:
        raise RequestError(f"unknown session fields {sorted(unknown)}")
    for name, types in SESSION_FIELDS.items():
        if name in session and not isinstance(session[name], types):
            raise RequestError(f"session field {name} has the wrong type")
    behavior = session.get("Behavior") or "release"
    if behavior not in ("release", "delete"):
        raise CommandError(f"Invalid Behavior setting '{behavior}'")
    if not session.get("Node"):
        raise CommandError("Must provide Node")
    if session.get("LockDelay", 0) < 0:
        raise RequestError("LockDelay must not be negative")
    for group in ("NodeChecks", "ServiceChecks", "Checks"):
        if not all(isinstance(c, str) for c in session.get(group) or ()):
            raise RequestError(f"session field {group} must list check IDs")
    return dict(session, Behavior=behavior, ID=str(uuid.uuid4()))


async def apply(server: Server, req: Request[SessionApply]) -> Any:
    p = req.payload
    if p.op == CREATE:
        session = _validate_session(p.session)
        authorize(req.token, f"session:{session['Node']}", "write")
        session_id = await server.propose(C.session_create(session, ts=server.now()))
        server.leader.session_created(session_id)
        return session_id
    if p.op == DESTROY:
        if not p.id:
            raise RequestError("Missing session")
        authorize(req.token, f"session:{p.id}", "write")
        result = await server.propose(C.session_destroy(p.id, ts=server.now()))
        server.leader.sessions.cancel(p.id)
        return result
    raise RequestError(f"Invalid session operation '{p.op}'")


async def renew(server: Server, req: Request[SessionRenew]) -> dict[str, Any] | None:
    """Reset a session's TTL timer on the leader (no log entry, as in Consul)."""
    authorize(req.token, f"session:{req.payload.id}", "write")
    session = server.store.sessions.get(req.payload.id)
    if session is None:
        return None
    server.leader.session_renewed(req.payload.id)
    return session.to_wire()


ENDPOINTS = [
    write("Session.Apply", SessionApply, apply),
    leader("Session.Renew", SessionRenew, renew),
    read("Session.Get", reads.session_info),
    read("Session.List", reads.session_list),
    read("Session.NodeSessions", reads.session_node),
]
