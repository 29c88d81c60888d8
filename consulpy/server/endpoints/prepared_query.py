"""PreparedQuery: Apply (create, update, delete) and the reads Get, List, Execute, Explain.

The ID of a new query is chosen here, on the leader, as Consul's PreparedQuery.Apply does.
Every rule is checked before the log (the definition alone, then against the leader's store);
the FSM checks the cross-row rules again against the state it applies to, so a race between
two writers still cannot store two queries with one name.
The reads live in server/reads.py with the others. Execute is a read: it runs on the leader
(or any server with ?stale) over that server's catalog, so a client agent gets the same answer
as a server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.server.failover import execute_with_failover
from consulpy.state import commands as C
from consulpy.state import prepared_queries as pq
from consulpy.state.store import StateStore
from consulpy.util.decode import DecodeError
from consulpy.util.goquote import go_quote

if TYPE_CHECKING:
    from consulpy.server.server import Server

CREATE, UPDATE, DELETE = C.PREPARED_QUERY_OPS


@dataclass(frozen=True, slots=True)
class PreparedQueryGet:
    id: str


@dataclass(frozen=True, slots=True)
class PreparedQueryExplain:
    query: str  # an ID or a name (templates match by prefix)


@dataclass(frozen=True, slots=True)
class PreparedQueryExecute:
    query: str
    dc: str
    near: str = ""
    limit: int = 0
    connect: bool = False
    agent: str = ""  # the asking agent's node, for Near "_agent"
    source_ip: str = ""  # the caller's address, for Near "_ip"


@dataclass(frozen=True, slots=True)
class PreparedQueryExecuteRemote:
    """Another datacenter's failover: the whole rendered query travels (it is not stored
    here)."""

    query: dict[str, Any]
    dc: str  # the datacenter that runs it (this one)
    limit: int = 0
    connect: bool = False


@dataclass(frozen=True, slots=True)
class PreparedQueryApply:
    op: str
    query: dict[str, Any] = field(default_factory=dict)  # the definition (update/delete: ID)


def _check_node_meta(meta: dict[str, str]) -> object:
    from consulpy.config.checks import node_meta_entry

    return node_meta_entry(meta)


def _validate(store: StateStore, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """The definition to store, or CommandError with Consul's text (HTTP 500)."""
    try:
        query = pq.normalize(body)
    except DecodeError as exc:
        raise RequestError(f"Request decode failed: {exc}") from exc
    table = store.prepared_queries
    if op == CREATE:
        try:
            pq.validate(query, creating=True, check_node_meta=_check_node_meta)
        except pq.QueryError as exc:
            raise CommandError(str(exc)) from exc
        query["ID"] = str(uuid.uuid4())
        while table.get(query["ID"]) is not None:  # as Consul: draw again on a collision
            query["ID"] = str(uuid.uuid4())
    else:
        if not query["ID"]:
            raise CommandError("Prepared query ID is required")
        if table.get(query["ID"]) is None:
            raise CommandError(f"Cannot modify non-existent prepared query: '{query['ID']}'")
        if op == DELETE:
            return {"ID": query["ID"]}
        try:
            pq.validate(query, creating=False, check_node_meta=_check_node_meta)
        except pq.QueryError as exc:
            raise CommandError(str(exc)) from exc
    try:
        pq.check_against(query, table.others(query["ID"]))
    except pq.QueryError as exc:
        raise CommandError(str(exc)) from exc
    session = query["Session"]
    if session:
        problem = pq.uuid_problem(session)
        if problem:
            raise CommandError(f"invalid session: {problem}")
        if store.sessions.get(session) is None:
            raise CommandError(f"invalid session {go_quote(session)}")
    try:
        pq.compile_template(query)
    except pq.QueryError as exc:
        raise CommandError(str(exc)) from exc
    return query


async def apply(server: Server, req: Request[PreparedQueryApply]) -> Any:
    p = req.payload
    if p.op not in C.PREPARED_QUERY_OPS:
        raise RequestError(f"Unknown prepared query operation: {p.op}")
    query = _validate(server.store, p.op, p.query)
    # Consul: write on the new Name prefix, and on the stored one for an update or delete.
    if p.op != DELETE:
        authorize(req.token, Resource.QUERY, query["Name"], Access.WRITE)
    if p.op != CREATE:
        old = server.store.prepared_queries.get(query["ID"]) or {}
        authorize(req.token, Resource.QUERY, old.get("Name") or "", Access.WRITE)
    result = await server.propose(C.prepared_query(p.op, query, ts=server.now()))
    return query["ID"] if p.op == CREATE else result


def _stored_name(store: StateStore, query_id: str) -> str:
    row = store.prepared_queries.get(query_id)
    return str(row.get("Name") or "") if row else ""


# Consul: reading a definition needs query read on its name; lists are filtered per query;
# execution results are filtered by what the token may read of the service.
ENDPOINTS = [
    write("PreparedQuery.Apply", PreparedQueryApply, apply),
    read(
        "PreparedQuery.Get",
        PreparedQueryGet,
        reads.prepared_query_get,
        lambda s, p: [Need(Resource.QUERY, _stored_name(s, p.id), Access.READ)],
    ),
    read(
        "PreparedQuery.List",
        Empty,
        reads.prepared_query_list,
        lambda _s, _p: [Need(Resource.QUERY, "", Access.READ, filtered=True)],
    ),
    read(
        "PreparedQuery.Explain",
        PreparedQueryExplain,
        reads.prepared_query_explain,
        lambda _s, p: [Need(Resource.QUERY, p.query, Access.READ)],
    ),
    read(
        "PreparedQuery.Execute",
        PreparedQueryExecute,
        reads.prepared_query_execute,
        lambda _s, _p: [Need(Resource.SERVICE, "", Access.READ, filtered=True)],
        after=execute_with_failover,
    ),
    read(
        "PreparedQuery.ExecuteRemote",
        PreparedQueryExecuteRemote,
        reads.prepared_query_execute_remote,
        lambda _s, _p: [Need(Resource.SERVICE, "", Access.READ, filtered=True)],
    ),
]
