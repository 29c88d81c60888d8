"""Session: Session.Apply (create, destroy), Session.Renew on the leader, and the reads.

The session ID is generated here, on the leader (as Consul's Session.Apply does), and the
destroy command carries the leader's clock: the lock-delay it starts is measured from there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import leader, read, write
from consulpy.server.endpoints.limits import SESSION_TTL_MAX_NS
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.state import commands as C
from consulpy.state.store import StateStore
from consulpy.util.durations import DurationError, format_duration_ns, parse_duration_ns

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


@dataclass(frozen=True, slots=True)
class SessionGet:
    id: str


@dataclass(frozen=True, slots=True)
class NodeSessions:
    node: str


def check_ttl(ttl: str, ttl_min_s: float) -> None:
    """Consul's session TTL rule (checked on the servers): a Go duration, 0 or within
    [session_ttl_min, 86400s]; the texts are Consul's (HTTP 500)."""
    if not ttl:
        return
    try:
        ttl_ns = parse_duration_ns(ttl)
    except DurationError as exc:
        raise CommandError(f"Session TTL '{ttl}' invalid: {exc}") from exc
    ttl_min_ns = round(ttl_min_s * 1e9)
    if ttl_ns != 0 and not ttl_min_ns <= ttl_ns <= SESSION_TTL_MAX_NS:
        raise CommandError(
            f"Invalid Session TTL '{ttl_ns}', must be between "
            f"[{format_duration_ns(ttl_min_ns)}={format_duration_ns(SESSION_TTL_MAX_NS)}]"
        )


def _validate_session(session: dict[str, Any], ttl_min_s: float) -> dict[str, Any]:
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
    check_ttl(session.get("TTL", ""), ttl_min_s)
    for group in ("NodeChecks", "ServiceChecks", "Checks"):
        if not all(isinstance(c, str) for c in session.get(group) or ()):
            raise RequestError(f"session field {group} must list check IDs")
    return dict(session, Behavior=behavior, ID=str(uuid.uuid4()))


async def apply(server: Server, req: Request[SessionApply]) -> Any:
    p = req.payload
    if p.op == CREATE:
        session = _validate_session(p.session, server.limits.session_ttl_min)
        authorize(req.token, Resource.SESSION, session["Node"], Access.WRITE)
        session_id = await server.propose(C.session_create(session, ts=server.now()))
        server.leader.session_created(session_id)
        return session_id
    if p.op == DESTROY:
        if not p.id:
            raise RequestError("Missing session")
        authorize(req.token, Resource.SESSION, session_node(server.store, p.id), Access.WRITE)
        result = await server.propose(C.session_destroy(p.id, ts=server.now()))
        server.leader.sessions.cancel(p.id)
        return result
    raise RequestError(f"Invalid session operation '{p.op}'")


async def renew(server: Server, req: Request[SessionRenew]) -> dict[str, Any] | None:
    """Reset a session's TTL timer on the leader (no log entry, as in Consul)."""
    authorize(req.token, Resource.SESSION, session_node(server.store, req.payload.id), Access.WRITE)
    session = server.store.sessions.get(req.payload.id)
    if session is None:
        return None
    server.leader.session_renewed(req.payload.id)
    return session.to_wire()


def session_node(store: StateStore, session_id: str) -> str:
    """Session rules are labelled with the session's node ("" for an unknown session)."""
    session = store.sessions.get(session_id)
    return session.node if session is not None else ""


_FILTERED = [Need(Resource.SESSION, "", Access.READ, filtered=True)]

ENDPOINTS = [
    write("Session.Apply", SessionApply, apply),
    leader("Session.Renew", SessionRenew, renew),
    read(
        "Session.Get",
        SessionGet,
        reads.session_info,
        lambda s, p: [Need(Resource.SESSION, session_node(s, p.id), Access.READ)],
    ),
    read("Session.List", Empty, reads.session_list, lambda _s, _p: _FILTERED),
    read(
        "Session.NodeSessions",
        NodeSessions,
        reads.session_node,
        lambda _s, p: [Need(Resource.SESSION, p.node, Access.READ)],
    ),
]
