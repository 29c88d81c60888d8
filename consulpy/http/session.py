"""/v1/session/*: create, destroy, info, node, list, renew."""

from __future__ import annotations

import string
from typing import Any

from aiohttp import web

from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    endpoint,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.session import SessionApply, SessionRenew, check_ttl
from consulpy.util.decode import (
    DecodeError,
    ListOf,
    Struct,
    decode_struct,
    parse_json,
)
from consulpy.util.durations import DurationError, duration_from_json, parse_duration_ns

DEFAULT_LOCK_DELAY_NS = 15 * 1_000_000_000
SERF_CHECK = "serfHealth"

SERVICE_CHECK = Struct("ServiceCheck", {"ID": "string", "Namespace": "string"}, strict=False)
# Consul's session decoder is custom and ignores unknown fields.
SESSION_BODY = Struct(
    "Session",
    {
        "ID": "any",
        "Name": "string",
        "Node": "string",
        "LockDelay": "any",
        "Behavior": "string",
        "TTL": "string",
        "NodeChecks": ListOf("string"),
        "ServiceChecks": ListOf(SERVICE_CHECK),
        "Checks": ListOf("string"),
    },
    strict=False,
)


def check_uuid(session_id: str) -> None:
    """Consul looks sessions up through memdb's UUID index, which takes any 36-character
    string of at most four hyphens whose other characters are an even number of hex digits
    (so "1"*36 is a valid key that matches nothing: info answers [], renew 404). Anything
    else fails the lookup itself, which Consul surfaces as a 500 with memdb's text."""
    if len(session_id) != 36:
        raise HTTPError(500, "UUID must be 36 characters")
    hyphens = session_id.count("-")
    if hyphens > 4:
        raise HTTPError(500, f'UUID should have maximum of 4 "-"; got {hyphens}')
    digits = session_id.replace("-", "")
    if len(digits) % 2:
        raise HTTPError(500, "Input (without hyphens) must be even length")
    for ch in digits:
        if ch not in string.hexdigits:
            bad = f"U+{ord(ch):04X} {ch!r}"
            raise HTTPError(500, f"Invalid UUID: encoding/hex: invalid byte: {bad}")


def _lock_delay(value: Any) -> int:
    if value is None:
        return DEFAULT_LOCK_DELAY_NS
    if isinstance(value, bool):
        raise bad_request("Request decode failed: invalid LockDelay")
    try:
        if isinstance(value, (int, float)):
            ns = duration_from_json(value)
        elif isinstance(value, str):
            ns = parse_duration_ns(value)
        else:
            raise bad_request(f"Request decode failed: invalid LockDelay {value!r}")
    except DurationError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    # Consul: a value below 1000 ns is taken as seconds ("5" means 5 s).
    if 0 < ns < 1000:
        ns *= 1_000_000_000
    return ns


def build_session(body: dict[str, Any], node_name: str, ttl_min_s: float) -> dict[str, Any]:
    """Validate a create request and fill Consul's defaults (fixupEmptySessionChecks)."""
    behavior = body.get("Behavior") or "release"
    if behavior not in ("release", "delete"):
        raise HTTPError(500, f"Invalid Behavior setting '{behavior}'")
    ttl = body.get("TTL") or ""
    check_ttl(ttl, ttl_min_s)  # the servers' rule, checked early for the caller's agent
    node_checks: list[str] | None = [SERF_CHECK]
    checks: list[str] | None = [SERF_CHECK]
    if "NodeChecks" in body:
        node_checks = body["NodeChecks"]
    if "Checks" in body:
        checks = body["Checks"]
    # Consul's fixupEmptySessionChecks, for clients written before NodeChecks existed.
    if not checks:
        node_checks = []
        checks = None
    elif checks == [SERF_CHECK] or not node_checks:
        checks = None
    service_checks = body.get("ServiceChecks")
    return {
        "Name": body.get("Name") or "",
        "Node": body.get("Node") or node_name,
        "LockDelay": _lock_delay(body.get("LockDelay")),
        "Behavior": behavior,
        "TTL": ttl,
        "NodeChecks": node_checks,
        # A null element is Go's zero ServiceCheck (ID ""), which the server then refuses.
        "ServiceChecks": [(c or {}).get("ID") or "" for c in service_checks]
        if service_checks
        else None,
        "Checks": checks,
    }


@endpoint("PUT")
async def session_create(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    raw = await read_body(req, 1 << 20, lambda n: f"Request body too large: {n} bytes")
    body: dict[str, Any] = {}
    if raw.strip():
        try:
            doc = parse_json(raw)
            if not isinstance(doc, dict):
                raise DecodeError("json: cannot unmarshal into Go value of type structs.Session")
            body = decode_struct(doc, SESSION_BODY)
        except DecodeError as exc:
            raise bad_request(f"Request decode failed: {exc}") from exc
    session = build_session(body, agent.node_name, agent.config.session_ttl_min)
    session_id = await agent.delegate.apply(
        "Session.Apply", SessionApply("create", session=session), request_token(req)
    )
    return respond(req, {"ID": session_id})


def _path_id(req: web.Request, missing: str) -> str:
    value = req.match_info.get("id", "")
    if not value:
        raise bad_request(missing)
    return value


@endpoint("PUT")
async def session_destroy(req: web.Request) -> web.StreamResponse:
    session_id = _path_id(req, "Missing session")
    check_uuid(session_id)
    await agent_of(req).delegate.apply(
        "Session.Apply", SessionApply("destroy", id=session_id), request_token(req)
    )
    return respond(req, True)


@endpoint("GET")
async def session_info(req: web.Request) -> web.StreamResponse:
    session_id = _path_id(req, "Missing session")
    check_uuid(session_id)
    meta, result = await agent_of(req).delegate.read(
        "Session.Get", {"id": session_id}, query_options(req), token=request_token(req)
    )
    return respond(req, result, meta=meta)


@endpoint("GET")
async def session_node(req: web.Request) -> web.StreamResponse:
    node = req.match_info.get("node", "")
    if not node:
        raise bad_request("Missing node name")
    meta, result = await agent_of(req).delegate.read(
        "Session.NodeSessions", {"node": node}, query_options(req), token=request_token(req)
    )
    return respond(req, result, meta=meta)


@endpoint("GET")
async def session_list(req: web.Request) -> web.StreamResponse:
    meta, result = await agent_of(req).delegate.read(
        "Session.List", {}, query_options(req), token=request_token(req)
    )
    return respond(req, result, meta=meta)


@endpoint("PUT")
async def session_renew(req: web.Request) -> web.StreamResponse:
    session_id = _path_id(req, "Missing session")
    check_uuid(session_id)
    session = await agent_of(req).delegate.apply(
        "Session.Renew", SessionRenew(session_id), request_token(req)
    )
    if session is None:
        raise HTTPError(404, f"Session id '{session_id}' not found")
    return respond(req, [session])


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/session/create", session_create),
        web.route("*", "/v1/session/destroy/{id:.*}", session_destroy),
        web.route("*", "/v1/session/info/{id:.*}", session_info),
        web.route("*", "/v1/session/node/{node:.*}", session_node),
        web.route("*", "/v1/session/list", session_list),
        web.route("*", "/v1/session/renew/{id:.*}", session_renew),
    ]
