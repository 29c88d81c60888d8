"""/v1/kv/<key>: GET (single, recurse, keys, raw), PUT (set, cas, acquire, release), DELETE."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from consulpy.agent.agent import Agent
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    endpoint,
    meta_headers,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.kvs import KVSApply, KVSGet
from consulpy.util.goparse import ascii_digits
from consulpy.util.goquery import go_query_encode
from consulpy.util.goquote import go_quote

KV_DOCS_URL = (
    "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size"
)


def _parse_u64(raw: str) -> int:
    """strconv.ParseUint(raw, 10, 64), with Go's texts. Consul answers these with 500; a
    malformed parameter is the client's error, so we answer 400 (docs/compatibility.md)."""
    if ascii_digits(raw):
        value = int(raw)
        if value < 1 << 64:
            return value
        raise HTTPError(400, f"strconv.ParseUint: parsing {go_quote(raw)}: value out of range")
    raise HTTPError(400, f"strconv.ParseUint: parsing {go_quote(raw)}: invalid syntax")


def validate_key(req: web.Request, key: str, agent: Agent | None = None) -> None:
    """Consul 1.21.x+ key validation (switchable with disable_kv_key_validation): no path
    traversal, no leading or trailing whitespace."""
    if not key or (agent or agent_of(req)).config.disable_kv_key_validation:
        return
    # Traversal needs a ".." segment in the key or an escaped dot or slash in the path.
    if ".." in key or "%" in req.raw_path:
        segments = key.split("/")
        raw = req.raw_path.split("?", 1)[0].lower()
        if ".." in segments or "..%2f" in raw or "%2e%2e" in raw:
            raise bad_request(f"Invalid key name {go_quote(key)}: path traversal is not allowed")
    if key != key.strip():
        raise bad_request(
            f"Invalid key name {go_quote(key)}: leading or trailing whitespace is not allowed"
        )


@endpoint("GET", "PUT", "DELETE")
async def kv_endpoint(req: web.Request) -> web.StreamResponse:
    key = req.match_info["key"]
    agent = agent_of(req)
    validate_key(req, key, agent)
    method = req.method
    if method == "GET":
        return await _get(req, key, agent)
    if method == "PUT":
        return await _put(req, key)
    return await _delete(req, key)


# The parameters of a request without a query string (the usual GET), without parsing one.
_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


async def _get(req: web.Request, key: str, agent: Agent) -> web.StreamResponse:
    q = req.query if req.query_string else _NO_QUERY
    opts = query_options(req)
    delegate = agent.delegate
    if "keys" in q:
        separator = q.get("separator", q.get("seperator", ""))
        meta, keys = await delegate.read(
            "KVS.ListKeys",
            {"key": key, "separator": separator},
            opts,
            token=request_token(req, agent),
        )
        if keys is None:
            return web.Response(status=404, headers=meta_headers(meta))
        return respond(req, keys, meta=meta)
    if "recurse" in q:
        meta, entries = await delegate.read(
            "KVS.List", {"key": key}, opts, token=request_token(req, agent)
        )
        if entries is None:
            return web.Response(status=404, headers=meta_headers(meta))
        return respond(req, entries, meta=meta)
    if not key:
        raise bad_request("Missing key name")
    meta, entries = await delegate.read(
        "KVS.Get", KVSGet(key), opts, token=request_token(req, agent)
    )
    if entries is None:
        return web.Response(status=404, headers=meta_headers(meta))
    if "raw" in q:
        headers = meta_headers(meta)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Content-Security-Policy"] = "sandbox"
        return web.Response(
            body=entries[0]["Value"] or b"", content_type="text/plain", headers=headers
        )
    return respond(req, entries, meta=meta, agent=agent)


def _conflicting(req: web.Request, names: tuple[str, ...]) -> None:
    if req.query_string and sum(1 for n in names if n in req.query) > 1:
        raise bad_request(f"Conflicting flags: {go_query_encode(req.query)}")


async def _put(req: web.Request, key: str) -> web.StreamResponse:
    if not key:
        raise bad_request("Missing key name")
    _conflicting(req, ("cas", "acquire", "release"))
    q = req.query
    agent = agent_of(req)
    flags = _parse_u64(q["flags"]) if "flags" in q else 0
    limit = agent.config.limits.kv_max_value_size
    value = await read_body(
        req,
        limit,
        lambda n: f"Request body({n} bytes) too large, max size: {limit} bytes. See {KV_DOCS_URL}.",
    )
    if "cas" in q:
        op = KVSApply("cas", key, value, flags, index=_parse_u64(q["cas"]))
    elif "acquire" in q:
        op = KVSApply("lock", key, value, flags, session=q["acquire"])
    elif "release" in q:
        op = KVSApply("unlock", key, value, flags, session=q["release"])
    else:
        op = KVSApply("set", key, value, flags)
    result = await agent.delegate.apply("KVS.Apply", op, request_token(req))
    return respond(req, bool(result))


async def _delete(req: web.Request, key: str) -> web.StreamResponse:
    q = req.query
    _conflicting(req, ("recurse", "cas"))
    if "recurse" in q:
        op = KVSApply("delete-tree", key)
    else:
        if not key:
            raise bad_request("Missing key name")
        if "cas" in q:
            op = KVSApply("delete-cas", key, index=_parse_u64(q["cas"]))
        else:
            op = KVSApply("delete", key)
    result = await agent_of(req).delegate.apply("KVS.Apply", op, request_token(req))
    return respond(req, bool(result))


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/kv/{key:.*}", kv_endpoint)]
