"""/v1/internal/ui/*: the catalog as the web UI reads it (node and service dumps, a
service's topology, gateway-linked services, the health overview)."""

from __future__ import annotations

from aiohttp import web

from consulpy.http.connect import _default_allow
from consulpy.http.endpoint import (
    agent_of,
    bad_request,
    endpoint,
    query_options,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.http.ui_metrics_proxy import metrics_proxy

TOPOLOGY_KINDS = ("", "ingress-gateway")


async def _read(req: web.Request, name: str, args: dict[str, object]) -> tuple[object, object]:
    opts = query_options(req)
    args["filter"] = opts.filter
    return await agent_of(req).delegate.read(name, args, opts, token=request_token(req))


def _peer_empty(req: web.Request) -> bool:
    """`?peer=<name>`: consulpy has no peerings, so a peer's catalog is empty."""
    return bool(req.query.get("peer"))


@endpoint("GET")
async def ui_nodes(req: web.Request) -> web.StreamResponse:
    meta, result = await _read(req, "Internal.NodeDump", {})
    return respond(req, [] if _peer_empty(req) else result, meta=meta)  # type: ignore[arg-type]


@endpoint("GET")
async def ui_node(req: web.Request) -> web.StreamResponse:
    name = req.match_info.get("node", "")
    if not name:
        raise bad_request("Missing node name")
    meta, result = await _read(req, "Internal.NodeInfo", {"node": name})
    if result is None:
        return web.Response(status=404)
    return respond(req, result, meta=meta)  # type: ignore[arg-type]


@endpoint("GET")
async def ui_services(req: web.Request) -> web.StreamResponse:
    meta, result = await _read(req, "Internal.ServiceDump", {})
    return respond(req, [] if _peer_empty(req) else result, meta=meta)  # type: ignore[arg-type]


@endpoint("GET")
async def ui_topology(req: web.Request) -> web.StreamResponse:
    name = req.match_info.get("service", "")
    if not name:
        raise bad_request("Missing service name")
    if "kind" not in req.query:
        raise bad_request("Missing service kind")
    kind = req.query["kind"]
    if kind not in TOPOLOGY_KINDS:
        raise bad_request(f'Unsupported service kind "{kind}"')
    args = {"service": name, "kind": kind, "default_allow": _default_allow(req)}
    meta, result = await _read(req, "Internal.ServiceTopology", args)
    return respond(req, result, meta=meta)  # type: ignore[arg-type]


@endpoint("GET")
async def ui_gateway_services(req: web.Request) -> web.StreamResponse:
    name = req.match_info.get("gateway", "")
    if not name:
        raise bad_request("Missing gateway name")
    meta, result = await _read(req, "Internal.GatewayServiceNodes", {"gateway": name})
    return respond(req, result, meta=meta)  # type: ignore[arg-type]


@endpoint("GET")
async def ui_catalog_overview(req: web.Request) -> web.StreamResponse:
    meta, result = await _read(req, "Internal.CatalogOverview", {})
    return respond(req, result, meta=meta)  # type: ignore[arg-type]


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/internal/ui/nodes", ui_nodes),
        web.route("*", "/v1/internal/ui/node/{node:.*}", ui_node),
        web.route("*", "/v1/internal/ui/services", ui_services),
        web.route("*", "/v1/internal/ui/service-topology/{service:.*}", ui_topology),
        web.route("*", "/v1/internal/ui/gateway-services-nodes/{gateway:.*}", ui_gateway_services),
        web.route("*", "/v1/internal/ui/catalog-overview", ui_catalog_overview),
        web.route("*", "/v1/internal/ui/metrics-proxy{tail:(/.*)?}", metrics_proxy),
    ]
