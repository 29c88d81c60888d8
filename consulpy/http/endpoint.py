"""What every /v1 endpoint shares: method checks, tenancy and datacenter checks, query
options, JSON rendering, Consul's headers and error texts.

Handlers stay thin: they parse their own parameters, call the agent's delegate (a server, or
later an RPC client) and return `respond(...)`; failures are raised as `HTTPError` (or the
server's `CommandError` / `NoLeaderError`) and rendered here as Consul does: plain text with
the status code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from consulpy.agent.agent import Agent
from consulpy.http import fanout
from consulpy.http import translate as translate_wan
from consulpy.http.tokens import request_token
from consulpy.server.blocking import EARLY_ANSWER
from consulpy.server.endpoints.authz import ACLNotFoundError, PermissionDenied
from consulpy.server.errors import (
    CommandError,
    NoLeaderError,
    RateLimitExceeded,
    RequestError,
)
from consulpy.server.query import CONSISTENT, DEFAULT, STALE, QueryMeta, QueryOptions
from consulpy.server.router import TARGET_DC
from consulpy.util.durations import DurationError, parse_duration_ns
from consulpy.util.goparse import ascii_digits

# The agent the app serves (set by `build_app`). consulpy/http depends on consulpy/agent, never
# the reverse, so this import is an ordinary one.
AGENT: web.AppKey[Agent] = web.AppKey("agent", Agent)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TEXT = "text/plain; charset=utf-8"


class HTTPError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


def bad_request(text: str) -> HTTPError:
    return HTTPError(400, text)


def agent_of(req: web.Request) -> Agent:
    return req.app[AGENT]


# ------------------------------------------------------------------ rendering
def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
_indented = json.JSONEncoder(indent=4, ensure_ascii=False, default=_json_default)


def compact_json(obj: Any) -> bytes:
    """`obj` as Consul's compact JSON (bytes as base64)."""
    return _compact.encode(obj).encode()


def indented_json(obj: Any) -> bytes:
    """`obj` as Consul's pretty JSON (`?pretty`, or any answer of a dev agent)."""
    return (_indented.encode(obj) + "\n").encode()


# Writes answer `true`/`false` on every request; skip the encoder for them.
_SCALARS = {True: (b"true", b"true\n"), False: (b"false", b"false\n")}


def render_json(req: web.Request, obj: Any, agent: Agent | None = None) -> bytes:
    """`obj` as Consul's JSON: indented with `?pretty` or the agent's pretty setting (a
    caller holding the `agent` passes it: one lookup less per request)."""
    pretty = (bool(req.query_string) and "pretty" in req.query) or (
        agent or agent_of(req)
    ).pretty_json
    if obj is True or obj is False:
        return _SCALARS[obj][pretty]
    if pretty:
        return indented_json(obj)
    return compact_json(obj)


def meta_headers(meta: QueryMeta, *, with_index: bool = True) -> dict[str, str]:
    headers = {
        "X-Consul-KnownLeader": "true" if meta.known_leader else "false",
        "X-Consul-LastContact": str(meta.last_contact_ms),
    }
    if with_index:
        headers["X-Consul-Index"] = str(max(meta.index, 1))
    if meta.results_filtered is not None:
        headers["X-Consul-Results-Filtered-By-ACLs"] = "true" if meta.results_filtered else "false"
    return headers


def respond(
    req: web.Request,
    obj: Any,
    *,
    status: int = 200,
    meta: QueryMeta | None = None,
    consistency_header: bool = False,
    headers: dict[str, str] | None = None,
    agent: Agent | None = None,
) -> web.Response:
    shared = meta.shared if meta is not None else None
    if shared is not None and not headers:
        return _shared_response(req, obj, status, meta, shared, consistency_header)  # type: ignore[arg-type]
    out = meta_headers(meta) if meta is not None else {}
    if meta is not None and consistency_header:
        out["X-Consul-Effective-Consistency"] = meta.consistency
    if headers:
        out.update(headers)
    return web.Response(
        body=render_json(req, obj, agent),
        status=status,
        content_type="application/json",
        headers=out,
    )


# What a catalog/health read answers for `?peer=<name>`: consulpy has no cluster peering, so
# no peer has imported anything (lists are empty, a node is not found).
PEER_EMPTY: dict[str, Any] = {"Catalog.ListServices": {}, "Catalog.NodeServices": None}


def _shared_response(
    req: web.Request,
    obj: Any,
    status: int,
    meta: QueryMeta,
    shared: dict[Any, Any],
    consistency_header: bool,
) -> web.Response:
    """A response whose body and headers are encoded once per evaluation: every blocking query
    that shared the evaluation (and so got this very `meta` and result) reuses them."""
    body, headers = _shared_entry(req, obj, meta, consistency_header, status)
    return web.Response(body=body, status=status, headers=headers)


def _shared_entry(
    req: web.Request, obj: Any, meta: QueryMeta, consistency_header: bool, status: int = 200
) -> tuple[bytes, CIMultiDict[str]]:
    """The body and headers of `obj` answered with `meta`, cached in `meta.shared` per
    rendering. The entry keeps `obj` so that a handler answering with something else never
    gets its body."""
    shared: dict[Any, Any] = meta.shared  # type: ignore[assignment]
    pretty = agent_of(req).pretty_json or (bool(req.query_string) and "pretty" in req.query)
    slot = (pretty, consistency_header, status)
    entry = shared.get(slot)
    if entry is None or entry[0] is not obj:
        out = meta_headers(meta)
        if consistency_header:
            out["X-Consul-Effective-Consistency"] = meta.consistency
        out["Content-Type"] = "application/json"
        entry = (obj, render_json(req, obj), CIMultiDict(out))
        shared[slot] = entry
    return entry[1], entry[2]


async def filtered_read(req: web.Request, name: str, args: dict[str, Any]) -> web.StreamResponse:
    """A named read that honours ?filter, ?peer and the blocking/consistency query options.
    With `?peer` the read still runs (its ACL checks, index and blocking stay Consul's) and
    its result is replaced by the empty answer (PEER_EMPTY, else [])."""
    opts = query_options(req)
    args["filter"] = opts.filter
    agent = agent_of(req)
    early = _early_answer(req, name, opts)
    if early is None:
        meta, result = await agent.delegate.read(name, args, opts, token=request_token(req))
    else:
        reset = EARLY_ANSWER.set(early)
        try:
            meta, result = await agent.delegate.read(name, args, opts, token=request_token(req))
        finally:
            EARLY_ANSWER.reset(reset)
        if early.sent:
            return early.response()
    if req.query.get("peer"):
        result = PEER_EMPTY.get(name, [])
    result, headers = translated(req, name, result)
    return respond(req, result, meta=meta, consistency_header=True, headers=headers)


def _early_answer(req: web.Request, name: str, opts: QueryOptions) -> fanout.EarlyAnswer | None:
    """An answer the shared wait's driver may send for this blocking read (see fanout.py):
    only when the handler would answer the shared result unchanged (no `?peer`, no WAN
    translation)."""
    if opts.index <= 0 or not fanout.eligible(req) or req.query.get("peer"):
        return None
    if name in translate_wan.READS and agent_of(req).config.translate_wan_addrs:
        return None
    pretty = agent_of(req).pretty_json or "pretty" in req.query
    return fanout.EarlyAnswer(req, _shared_entry, pretty=pretty, consistency_header=True)


def translated(req: web.Request, name: str, result: Any) -> tuple[Any, dict[str, str] | None]:
    """`result` of read `name` with `translate_wan_addrs` applied (another datacenter's
    addresses), and the header that says the agent translates (None: it does not)."""
    agent = agent_of(req)
    translate = translate_wan.READS.get(name)
    if translate is None or not agent.config.translate_wan_addrs:
        return result, None
    if TARGET_DC.get() not in ("", agent.datacenter):
        result = translate(result)
    return result, {translate_wan.HEADER: "true"}


def empty_ok() -> web.Response:
    return web.Response(status=200)


def text_error(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=text, content_type="text/plain", charset="utf-8", headers=headers
    )


# ------------------------------------------------------------- query options
def parse_wait(raw: str) -> float:
    try:
        ns = parse_duration_ns(raw)
    except DurationError as exc:
        raise bad_request("Invalid wait time") from exc
    if ns < 0:
        raise bad_request("Invalid wait time")
    return ns / 1e9


def parse_uint(raw: str) -> int:
    if not ascii_digits(raw):
        raise ValueError(raw)
    value = int(raw)
    if value >= 1 << 64:
        raise ValueError(raw)
    return value


_DISCOVERY_PATHS = ("/v1/catalog/", "/v1/health/")


def query_options(req: web.Request) -> QueryOptions:
    """Consul's parseWait + parseConsistency + filter, with its error texts."""
    opts = QueryOptions()
    if not req.query_string:  # the usual request: no parameter to parse
        if req.path.startswith(_DISCOVERY_PATHS):
            _discovery_stale(req, opts)
        cache_control = req.headers.get("Cache-Control")
        if cache_control:
            _check_cache_control(cache_control)
        return opts
    q = req.query
    raw_index = q.get("index")
    if raw_index is not None and raw_index != "":
        try:
            opts.index = parse_uint(raw_index)
        except ValueError as exc:
            raise bad_request("Invalid index") from exc
    raw_wait = q.get("wait")
    if raw_wait is not None and raw_wait != "":
        opts.wait = parse_wait(raw_wait)
    stale = "stale" in q
    consistent = "consistent" in q
    if stale and consistent:
        raise bad_request("Cannot specify ?stale with ?consistent, conflicting semantics.")
    if "cached" in q and consistent:
        raise bad_request("Cannot specify ?cached with ?consistent, conflicting semantics.")
    raw_max_stale = q.get("max_stale")
    if raw_max_stale is not None and raw_max_stale != "":
        try:
            opts.max_stale = parse_duration_ns(raw_max_stale) / 1e9
        except DurationError as exc:
            raise bad_request(f'Invalid max_stale value "{raw_max_stale}"') from exc
    if "leader" in q:
        opts.consistency = DEFAULT
    elif consistent:
        opts.consistency = CONSISTENT
    elif stale or opts.max_stale > 0:
        opts.consistency = STALE
    elif req.path.startswith(_DISCOVERY_PATHS):
        _discovery_stale(req, opts)
    cache_control = req.headers.get("Cache-Control")
    if cache_control:
        _check_cache_control(cache_control)
    opts.filter = q.get("filter", "")
    return opts


def _discovery_stale(req: web.Request, opts: QueryOptions) -> None:
    """Consul's discovery_max_stale: catalog and health reads that ask for no consistency
    mode may be answered by any server that heard from the leader within that time."""
    max_stale = agent_of(req).config.discovery_max_stale
    if max_stale > 0:
        opts.consistency = STALE
        opts.max_stale = max_stale


def _check_cache_control(value: str) -> None:
    for directive in value.split(","):
        name, _, arg = directive.strip().partition("=")
        if name.strip() in ("max-age", "stale-if-error") and not ascii_digits(arg.strip()):
            raise bad_request("Invalid Cache-Control header.")


# ------------------------------------------------------------------- wrapping
def _tenancy_error(req: web.Request) -> str | None:
    headers = req.headers
    if headers.get("X-Consul-Namespace"):
        return 'Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature'
    if req.query_string:
        if req.query.get("ns"):
            return 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature'
        partition = req.query.get("partition")
        if partition and partition != "default":
            return (
                'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature'
            )
    if headers.get("X-Consul-Partition", "default") not in ("", "default"):
        return 'Invalid header: "X-Consul-Partition" - Partitions are a Consul Enterprise feature'
    return None


def _unprintable_allowed(req: web.Request) -> bool:
    """disable_http_unprintable_char_filter: let old keys with control characters (or other
    non-printable runes, as Go's unicode.IsPrint has them) through, as Consul does."""
    return agent_of(req).config.disable_http_unprintable_char_filter


def allow_header(methods: tuple[str, ...]) -> str:
    return ",".join(("OPTIONS", *methods))


def endpoint(*methods: str, check_dc: bool = True) -> Callable[[Handler], Handler]:
    """Wrap a handler with Consul's method, tenancy, datacenter and error handling."""
    allowed = frozenset(methods)
    allow = allow_header(methods)

    def wrap(fn: Handler) -> Handler:
        async def handler(req: web.Request) -> web.StreamResponse:
            if not req.path.isprintable() and not _unprintable_allowed(req):
                # Consul refuses such paths before routing: 400 with an empty body.
                return web.Response(status=400)
            method = req.method
            if method not in allowed:
                if method == "OPTIONS":
                    return web.Response(status=200, headers={"Allow": allow})
                return text_error(405, f"method {method} not allowed", {"Allow": allow})
            problem = _tenancy_error(req)
            if problem is not None:
                return text_error(400, problem)
            dc = req.query.get("dc") if check_dc and req.query_string else None
            routed = None
            if dc and dc != (agent := agent_of(req)).datacenter:
                # A server answers at once for a datacenter it has never heard of; a client
                # agent leaves that to its servers (they know the WAN pool).
                if not agent.may_route_to(dc):
                    return text_error(500, "No path to datacenter")
                # /v1/agent/* is this agent's own state: served here whatever `dc` says, as
                # in Consul (and no task it starts inherits another datacenter).
                if not req.path.startswith("/v1/agent/"):
                    routed = TARGET_DC.set(dc)
            try:
                return await fn(req)
            except HTTPError as exc:
                return text_error(exc.status, exc.text, exc.headers)
            except RequestError as exc:  # refused by a server endpoint's validation
                return text_error(400, str(exc))
            except RateLimitExceeded as exc:  # a server's limits.rpc_rate
                return text_error(429, str(exc))
            except (PermissionDenied, ACLNotFoundError) as exc:  # refused by the ACLs
                return text_error(403, str(exc))
            except CommandError as exc:
                return text_error(500, str(exc))
            except NoLeaderError as exc:
                return text_error(500, str(exc))
            finally:
                if routed is not None:
                    TARGET_DC.reset(routed)

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        handler.methods = tuple(methods)  # type: ignore[attr-defined]  # read by openapi.py
        return handler

    return wrap


async def read_body(req: web.Request, limit: int, too_large: Callable[[int], str]) -> bytes:
    """Read the whole body, refusing (413) before reading when Content-Length says it is too
    large, and after reading when a chunked body turns out to be."""
    length = req.content_length
    if length is not None and length > limit:
        raise HTTPError(413, too_large(length))
    body = await req.read()
    if len(body) > limit:
        raise HTTPError(413, too_large(len(body)))
    return body
