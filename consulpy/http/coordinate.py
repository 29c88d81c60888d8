"""/v1/coordinate/*: the network coordinates of servers and nodes, and agents' updates."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.http.catalog import decode_body
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    empty_ok,
    endpoint,
    meta_headers,
    query_options,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.coordinate import CoordinateUpdate
from consulpy.server.endpoints.request import Empty
from consulpy.util.decode import ListOf, Struct

COORD = Struct(
    "Coordinate",
    {"Vec": ListOf("float"), "Error": "float", "Adjustment": "float", "Height": "float"},
    strict=False,
)
UPDATE = Struct(
    "CoordinateUpdateRequest",
    {"Node": "string", "Segment": "string", "Coord": COORD},
    strict=False,
)


def _enabled(req: web.Request) -> None:
    if agent_of(req).config.disable_coordinates:
        raise HTTPError(401, "Coordinate support disabled")


@endpoint("GET")
async def coordinate_datacenters(req: web.Request) -> web.StreamResponse:
    _enabled(req)
    result = await agent_of(req).delegate.apply(
        "Coordinate.ListDatacenters", Empty(), request_token(req)
    )
    return respond(req, result or [])


@endpoint("GET")
async def coordinate_nodes(req: web.Request) -> web.StreamResponse:
    _enabled(req)
    opts = query_options(req)
    args: dict[str, Any] = {}
    if "segment" in req.query:
        args["segment"] = req.query.get("segment", "")
    meta, result = await agent_of(req).delegate.read(
        "Coordinate.ListNodes", args, opts, token=request_token(req)
    )
    return respond(req, result or [], meta=meta, consistency_header=True)


@endpoint("GET")
async def coordinate_node(req: web.Request) -> web.StreamResponse:
    _enabled(req)
    node = req.match_info.get("node", "")
    if not node:
        raise bad_request("Missing node name")
    opts = query_options(req)
    meta, result = await agent_of(req).delegate.read(
        "Coordinate.Node", {"node": node}, opts, token=request_token(req)
    )
    segment = req.query.get("segment")
    if segment is not None and "segment" in req.query and result:
        result = [r for r in result if (r.get("Segment") or "") == segment]
    if not result:
        # Consul: 404 with an empty body (no content type), and the query's headers.
        return web.Response(status=404, headers=meta_headers(meta))
    return respond(req, result, meta=meta, consistency_header=True)


@endpoint("PUT")
async def coordinate_update(req: web.Request) -> web.StreamResponse:
    _enabled(req)
    body = await decode_body(req, UPDATE)
    coord = body.get("Coord") or {}
    payload = CoordinateUpdate(
        node=body.get("Node") or "",
        segment=body.get("Segment") or "",
        coord={
            "Vec": coord.get("Vec") or [],
            "Error": coord.get("Error") or 0.0,
            "Adjustment": coord.get("Adjustment") or 0.0,
            "Height": coord.get("Height") or 0.0,
        },
    )
    await agent_of(req).delegate.apply("Coordinate.Update", payload, request_token(req))
    return empty_ok()


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/coordinate/datacenters", coordinate_datacenters),
        web.route("*", "/v1/coordinate/nodes", coordinate_nodes),
        web.route("*", "/v1/coordinate/node/{node:.*}", coordinate_node),
        web.route("*", "/v1/coordinate/update", coordinate_update),
    ]
