"""/v1/catalog/*: register, deregister, datacenters, nodes, services, service, connect, node,
node-services."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    endpoint,
    filtered_read,
    query_options,
    read_body,
    respond,
    translated,
)
from consulpy.http.specs import DEREGISTER_REQUEST, REGISTER_REQUEST
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.catalog import CatalogDeregister, CatalogRegister
from consulpy.server.endpoints.request import Empty
from consulpy.server.router import target_dc
from consulpy.state.structs import check_row, check_type, definition_view, service_row
from consulpy.util.decode import DecodeError, Struct, decode_struct, parse_json

MAX_BODY = 1 << 20
STATUSES = ("passing", "warning", "critical")


async def decode_body(req: web.Request, spec: Struct) -> dict[str, Any]:
    raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    if not raw.strip():
        raise bad_request("Request decode failed: EOF")
    try:
        doc = parse_json(raw)
        if not isinstance(doc, dict):
            raise DecodeError(
                f"json: cannot unmarshal array into Go value of type structs.{spec.name}"
            )
        return decode_struct(doc, spec)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc


def _is_any(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def _enterprise_fields(obj: dict[str, Any], what: str) -> None:
    for field in ("Namespace", "Partition"):
        if obj.get(field) not in (None, "", "default"):
            raise HTTPError(400, f"{field}s are a Consul Enterprise feature ({what})")
    if obj.get("PeerName"):
        raise HTTPError(500, "cannot register requests with PeerName in them")


def normalize_service(svc: dict[str, Any]) -> dict[str, Any]:
    """Consul's servicePreApply: default ID, name required with an ID, no 0.0.0.0 address."""
    _enterprise_fields(svc, "service")
    name = svc.get("Service") or ""
    sid = svc.get("ID") or name
    if sid and not name:
        raise HTTPError(
            500, "Must provide service name (Service.Service) when service ID is provided"
        )
    address = svc.get("Address") or ""
    if address and _is_any(address):
        raise HTTPError(500, "Invalid service address")
    weights = svc.get("Weights") or {}
    passing, warning = weights.get("Passing", 1), weights.get("Warning", 1)
    if not weights or passing is None or passing < 1 or warning is None or warning < 0:
        passing, warning = 1, 1  # the catalog silently falls back to the defaults
    return service_row(
        Kind=svc.get("Kind") or "",
        ID=sid,
        Service=name,
        Tags=list(svc.get("Tags") or []),
        Address=address,
        TaggedAddresses=svc.get("TaggedAddresses") or None,
        Meta=svc.get("Meta") or None,
        Port=svc.get("Port") or 0,
        SocketPath=svc.get("SocketPath") or "",
        Weights={"Passing": passing, "Warning": warning},
        EnableTagOverride=bool(svc.get("EnableTagOverride")),
        Proxy=svc.get("Proxy") or None,
        Connect=svc.get("Connect") or None,
        Locality=svc.get("Locality"),
    )


def normalize_check(check: dict[str, Any], node: str) -> dict[str, Any]:
    _enterprise_fields(check, "check")
    check_node = check.get("Node") or node
    cid = check.get("CheckID") or check.get("Name") or ""
    if check_node != node:
        raise HTTPError(
            500,
            f"Node '{check_node}' for check '{cid}' doesn't match register request node '{node}'",
        )
    status = check.get("Status") or "critical"
    if status not in STATUSES:
        raise HTTPError(500, f"Invalid check status: '{status}'")
    raw_definition = check.get("Definition") or {}
    definition = definition_view(raw_definition)
    return check_row(
        Node=node,
        CheckID=cid,
        Name=check.get("Name") or "",
        Status=status,
        Notes=check.get("Notes") or "",
        Output=check.get("Output") or "",
        ServiceID=check.get("ServiceID") or "",
        ServiceName=check.get("ServiceName") or "",
        ServiceTags=list(check.get("ServiceTags") or []),
        Type=check.get("Type") or check_type(raw_definition),
        Interval=check.get("Interval") or definition.get("Interval", ""),
        Timeout=check.get("Timeout") or definition.get("Timeout", ""),
        ExposedPort=check.get("ExposedPort") or 0,
        Definition=definition,
    )


def normalize_register(body: dict[str, Any], datacenter: str) -> dict[str, Any]:
    """The HTTP body in the shape agents send (one `Check` joins `Checks`, service and check
    definitions in their stored form). Consul's Catalog.Register rules (node, address, node
    ID, datacenter) are the servers' (`server/endpoints/rows.check_register`), with its texts."""
    _enterprise_fields(body, "node")
    node = body.get("Node") or ""
    request: dict[str, Any] = {
        "ID": body.get("ID") or "",
        "Node": node,
        "Address": body.get("Address") or "",
        "Datacenter": body.get("Datacenter") or datacenter,
        "TaggedAddresses": body.get("TaggedAddresses") or None,
        "NodeMeta": body.get("NodeMeta") or None,
        "SkipNodeUpdate": bool(body.get("SkipNodeUpdate")),
    }
    if body.get("Locality"):
        request["Locality"] = body["Locality"]
    if body.get("Service"):
        request["Service"] = normalize_service(body["Service"])
    checks = list(body.get("Checks") or [])
    if body.get("Check"):
        checks.append(body["Check"])
    request["Checks"] = [normalize_check(c, node) for c in checks if c]
    return request


@endpoint("PUT")
async def catalog_register(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    body = await decode_body(req, REGISTER_REQUEST)
    request = normalize_register(body, target_dc(agent.datacenter))
    await agent.delegate.apply("Catalog.Register", CatalogRegister(request), request_token(req))
    return respond(req, True)


@endpoint("PUT")
async def catalog_deregister(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    body = await decode_body(req, DEREGISTER_REQUEST)
    _enterprise_fields(body, "node")
    node = body.get("Node") or ""
    if not node:
        raise HTTPError(500, "Must provide node")
    dc = body.get("Datacenter") or target_dc(agent.datacenter)
    if dc != target_dc(agent.datacenter):
        raise HTTPError(500, "No path to datacenter")
    payload = CatalogDeregister(
        node, service_id=body.get("ServiceID") or "", check_id=body.get("CheckID") or ""
    )
    await agent.delegate.apply("Catalog.Deregister", payload, request_token(req))
    return respond(req, True)


@endpoint("GET", check_dc=False)
async def catalog_datacenters(req: web.Request) -> web.StreamResponse:
    """The datacenters the servers know from the WAN pool, nearest first."""
    result = await agent_of(req).delegate.apply(
        "Catalog.ListDatacenters", Empty(), request_token(req)
    )
    return respond(req, result)


def node_meta_param(req: web.Request) -> list[list[str]]:
    pairs = []
    for raw in req.query.getall("node-meta", []):
        key, _, value = raw.partition(":")
        pairs.append([key, value])
    return pairs


def near_param(req: web.Request) -> str:
    """`?near=`: a node name to sort by estimated RTT from; `_agent` is this agent's node."""
    near = req.query.get("near", "")
    return agent_of(req).node_name if near == "_agent" else near


@endpoint("GET")
async def catalog_nodes(req: web.Request) -> web.StreamResponse:
    return await filtered_read(
        req, "Catalog.ListNodes", {"node_meta": node_meta_param(req), "near": near_param(req)}
    )


@endpoint("GET")
async def catalog_services(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Catalog.ListServices", {"node_meta": node_meta_param(req)})


def _service_args(req: web.Request, connect: bool) -> dict[str, Any]:
    name = req.match_info.get("service", "")
    if not name:
        raise bad_request("Missing service name")
    return {
        "service": name,
        "tags": req.query.getall("tag", []),
        "node_meta": node_meta_param(req),
        "connect": connect,
        "near": near_param(req),
    }


@endpoint("GET")
async def catalog_service(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Catalog.ServiceNodes", _service_args(req, connect=False))


@endpoint("GET")
async def catalog_connect(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Catalog.ServiceNodes", _service_args(req, connect=True))


def _node_name(req: web.Request) -> str:
    name = req.match_info.get("node", "")
    if not name:
        raise bad_request("Missing node name")
    return name


@endpoint("GET")
async def catalog_node(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Catalog.NodeServices", {"node": _node_name(req)})


@endpoint("GET")
async def catalog_node_services(req: web.Request) -> web.StreamResponse:
    opts = query_options(req)
    args = {"node": _node_name(req), "as_list": True, "filter": opts.filter}
    meta, result = await agent_of(req).delegate.read(
        "Catalog.NodeServices", args, opts, token=request_token(req)
    )
    if result is None or req.query.get("peer"):  # no cluster peers: nothing imported
        result = {"Node": None, "Services": None}
    result, headers = translated(req, "Catalog.NodeServices", result)
    return respond(req, result, meta=meta, consistency_header=True, headers=headers)


@endpoint("GET")
async def catalog_gateway_services(req: web.Request) -> web.StreamResponse:
    """The services linked to an ingress or terminating gateway by its config entry (Consul
    applies no ?filter here)."""
    gateway = req.match_info.get("gateway", "")
    if not gateway:
        raise bad_request("Missing gateway name")
    meta, result = await agent_of(req).delegate.read(
        "Catalog.GatewayServices",
        {"gateway": gateway},
        query_options(req),
        token=request_token(req),
    )
    return respond(req, result, meta=meta, consistency_header=True)


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/catalog/register", catalog_register),
        web.route("*", "/v1/catalog/deregister", catalog_deregister),
        web.route("*", "/v1/catalog/gateway-services/{gateway:.*}", catalog_gateway_services),
        web.route("*", "/v1/catalog/datacenters", catalog_datacenters),
        web.route("*", "/v1/catalog/nodes", catalog_nodes),
        web.route("*", "/v1/catalog/services", catalog_services),
        web.route("*", "/v1/catalog/service/{service:.*}", catalog_service),
        web.route("*", "/v1/catalog/connect/{service:.*}", catalog_connect),
        web.route("*", "/v1/catalog/node/{node:.*}", catalog_node),
        web.route("*", "/v1/catalog/node-services/{node:.*}", catalog_node_services),
    ]
