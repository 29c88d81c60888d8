"""/v1/config: config entries (write with cas, read, list, delete)."""

from __future__ import annotations

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
from consulpy.server.endpoints.config_entry import ConfigEntryApply, ConfigEntryDelete
from consulpy.util.decode import DecodeError, parse_json
from consulpy.util.goparse import ascii_digits
from consulpy.util.goquote import go_quote

MAX_BODY = 1 << 20


def _cas(req: web.Request) -> int | None:
    raw = req.query.get("cas")
    if raw is None:
        return None
    if not (ascii_digits(raw) and int(raw) < 1 << 64):
        raise bad_request(
            f"Error parsing cas value: strconv.ParseUint: parsing {go_quote(raw)}: invalid syntax"
        )
    return int(raw)


@endpoint("PUT")
async def config_write(req: web.Request) -> web.StreamResponse:
    """The entry is decoded, normalized and validated by the ConfigEntry.Apply endpoint on
    the leader; here only the JSON is parsed."""
    raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    try:
        doc = parse_json(raw)
    except DecodeError as exc:
        raise bad_request(f"Request decoding failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise bad_request("Request decoding failed: expected a JSON object")
    payload = ConfigEntryApply(doc, cas=_cas(req))
    result = await agent_of(req).delegate.apply("ConfigEntry.Apply", payload, request_token(req))
    return respond(req, bool(result))


def _kind(req: web.Request) -> str:
    from consulpy.connect import config_entries as ce

    kind = req.match_info.get("kind", "")
    if kind not in ce.KINDS:
        raise bad_request(f"invalid config entry kind: {kind}")
    return kind


@endpoint("GET")
async def config_list(req: web.Request) -> web.StreamResponse:
    kind = _kind(req)
    meta, entries = await agent_of(req).delegate.read(
        "ConfigEntry.List", {"kind": kind}, query_options(req), token=request_token(req)
    )
    return respond(req, entries, meta=meta)


@endpoint("GET", "DELETE")
async def config_entry(req: web.Request) -> web.StreamResponse:
    kind = _kind(req)
    name = req.match_info.get("name", "")
    if not name:
        raise bad_request("Missing config entry name")
    delegate = agent_of(req).delegate
    if req.method == "GET":
        meta, entry = await delegate.read(
            "ConfigEntry.Get",
            {"kind": kind, "name": name},
            query_options(req),
            token=request_token(req),
        )
        if entry is None:
            raise HTTPError(404, f'Config entry not found for "{kind}" / "{name}"')
        return respond(req, entry, meta=meta)
    cas = _cas(req)
    if cas == 0:
        raise bad_request("cas value must be greater than 0 when deleting")
    payload = ConfigEntryDelete(kind, name, cas=cas)
    result: Any = await delegate.apply("ConfigEntry.Delete", payload, request_token(req))
    return respond(req, bool(result) if cas is not None else {})


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/config", config_write),
        web.route("*", "/v1/config/{kind}", config_list),
        web.route("*", "/v1/config/{kind}/{name:.*}", config_entry),
    ]
