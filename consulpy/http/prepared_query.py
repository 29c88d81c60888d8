"""/v1/query: create, list, read, update, delete, execute and explain prepared queries.

Thin handlers over the PreparedQuery.* server endpoints; every validation error the servers
raise is a 500 with Consul's text, as Consul answers them (spec 7.2).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.http import translate
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    empty_ok,
    endpoint,
    meta_headers,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.prepared_query import PreparedQueryApply
from consulpy.server.query import QueryMeta
from consulpy.server.router import target_dc
from consulpy.util.decode import DecodeError, parse_json
from consulpy.util.goparse import parse_bool, parse_int
from consulpy.util.goquote import go_quote

MAX_BODY = 1 << 20
NOT_FOUND = "Query not found"


async def _definition(req: web.Request) -> dict[str, Any]:
    raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    if not raw.strip():
        return {}
    try:
        doc = parse_json(raw)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise bad_request(
            "Request decode failed: json: cannot unmarshal into Go value of type "
            "structs.PreparedQuery"
        )
    return doc


@endpoint("GET", "POST")
async def queries(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    token = request_token(req)
    if req.method == "POST":
        body = await _definition(req)
        query_id = await agent.delegate.apply(
            "PreparedQuery.Apply", PreparedQueryApply("create", body), token
        )
        return respond(req, {"ID": query_id})
    meta, result = await agent.delegate.read(
        "PreparedQuery.List", {}, query_options(req), token=token
    )
    return respond(req, result or [], meta=meta)


@endpoint("GET", "PUT", "DELETE")
async def query(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    token = request_token(req)
    query_id = req.match_info["id"]
    if req.method == "GET":
        meta, result = await agent.delegate.read(
            "PreparedQuery.Get", {"id": query_id}, query_options(req), token=token
        )
        if result is None:
            raise HTTPError(404, NOT_FOUND, _meta_headers(meta))
        return respond(req, result, meta=meta)
    if req.method == "PUT":
        body = await _definition(req)
        body = dict(body, ID=query_id)  # the URL names the query; a body ID is overridden
        await agent.delegate.apply("PreparedQuery.Apply", PreparedQueryApply("update", body), token)
        return empty_ok()
    await agent.delegate.apply(
        "PreparedQuery.Apply", PreparedQueryApply("delete", {"ID": query_id}), token
    )
    return empty_ok()


def _meta_headers(meta: QueryMeta) -> dict[str, str]:
    return meta_headers(meta)


def _embedded_meta(meta: QueryMeta) -> dict[str, Any]:
    """The QueryMeta fields Consul's execute/explain responses embed (untagged Go struct)."""
    return {
        "Index": meta.index,
        "LastContact": meta.last_contact_ms * 1_000_000,
        "KnownLeader": meta.known_leader,
        "ConsistencyLevel": meta.consistency,
        "NotModified": False,
        "Backend": 0,
        "ResultsFilteredByACLs": bool(meta.results_filtered),
    }


def _source_ip(req: web.Request) -> str:
    forwarded = req.headers.get("X-Forwarded-For", "")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return req.remote or ""


@endpoint("GET")
async def execute(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    q = req.query
    limit = 0
    raw_limit = q.get("limit", "")
    if raw_limit:
        parsed_limit = parse_int(raw_limit)
        if parsed_limit is None:
            raise HTTPError(
                500, f"Bad limit: strconv.Atoi: parsing {go_quote(raw_limit)}: invalid syntax"
            )
        limit = parsed_limit
    connect = False
    raw_connect = q.get("connect", "")
    if raw_connect:
        parsed = parse_bool(raw_connect)
        if parsed is None:
            raise HTTPError(
                500,
                f"Error parsing 'connect' value: strconv.ParseBool: parsing "
                f'"{raw_connect}": invalid syntax',
            )
        connect = parsed
    args = {
        "query": req.match_info["id"],
        "near": q.get("near", ""),
        "limit": limit,
        "connect": connect,
        "agent": agent.node_name,
        "source_ip": _source_ip(req),
        "dc": target_dc(agent.datacenter),  # `?dc=`: the datacenter that runs it
    }
    meta, result = await agent.delegate.read(
        "PreparedQuery.Execute", args, query_options(req), token=request_token(req)
    )
    if result is None:
        raise HTTPError(404, NOT_FOUND, _meta_headers(meta))
    headers = None
    if agent.config.translate_wan_addrs:
        # By the datacenter the nodes came from: a failover answers with another one's.
        headers = {translate.HEADER: "true"}
        if result.get("Datacenter", agent.datacenter) != agent.datacenter:
            result = {**result, "Nodes": translate.health_rows(result.get("Nodes"))}
    return respond(req, {**result, **_embedded_meta(meta)}, meta=meta, headers=headers)


@endpoint("GET")
async def explain(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    meta, result = await agent.delegate.read(
        "PreparedQuery.Explain",
        {"query": req.match_info["id"]},
        query_options(req),
        token=request_token(req),
    )
    if result is None:
        raise HTTPError(404, NOT_FOUND, _meta_headers(meta))
    return respond(req, {**result, **_embedded_meta(meta)}, meta=meta)


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/query", queries),
        web.route("*", "/v1/query/", queries),
        web.route("*", "/v1/query/{id}/execute", execute),
        web.route("*", "/v1/query/{id}/explain", explain),
        web.route("*", "/v1/query/{id}", query),
    ]
