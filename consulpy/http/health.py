"""/v1/health/*: node, checks, service, connect, ingress, state."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.http.catalog import near_param, node_meta_param
from consulpy.http.endpoint import (
    bad_request,
    endpoint,
    filtered_read,
)
from consulpy.util.goparse import parse_bool


def _segment(req: web.Request, name: str, missing: str) -> str:
    value = req.match_info.get(name, "")
    if not value:
        raise bad_request(missing)
    return value


@endpoint("GET")
async def health_node(req: web.Request) -> web.StreamResponse:
    return await filtered_read(
        req, "Health.NodeChecks", {"node": _segment(req, "node", "Missing node name")}
    )


@endpoint("GET")
async def health_checks(req: web.Request) -> web.StreamResponse:
    service = _segment(req, "service", "Missing service name")
    return await filtered_read(
        req,
        "Health.ServiceChecks",
        {"service": service, "node_meta": node_meta_param(req), "near": near_param(req)},
    )


@endpoint("GET")
async def health_state(req: web.Request) -> web.StreamResponse:
    state = _segment(req, "state", "Missing check state")
    return await filtered_read(
        req,
        "Health.ChecksInState",
        {"state": state, "node_meta": node_meta_param(req), "near": near_param(req)},
    )


def _passing(req: web.Request) -> bool:
    """absent: false; present and empty: true; else Go's ParseBool."""
    if "passing" not in req.query:
        return False
    raw = req.query.get("passing", "")
    if raw == "":
        return True
    value = parse_bool(raw)
    if value is None:
        raise bad_request("Invalid value for ?passing")
    return value


def _service_args(req: web.Request, connect: bool, ingress: bool = False) -> dict[str, Any]:
    return {
        "service": _segment(req, "service", "Missing service name"),
        "tags": req.query.getall("tag", []),
        "node_meta": node_meta_param(req),
        "passing": _passing(req),
        "connect": connect,
        "near": near_param(req),
        "ingress": ingress,
    }


@endpoint("GET")
async def health_service(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Health.ServiceNodes", _service_args(req, connect=False))


@endpoint("GET")
async def health_connect(req: web.Request) -> web.StreamResponse:
    return await filtered_read(req, "Health.ServiceNodes", _service_args(req, connect=True))


@endpoint("GET")
async def health_ingress(req: web.Request) -> web.StreamResponse:
    """The ingress gateways that route to the service (by their config entries)."""
    args = _service_args(req, connect=False, ingress=True)
    return await filtered_read(req, "Health.ServiceNodes", args)


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/health/node/{node:.*}", health_node),
        web.route("*", "/v1/health/checks/{service:.*}", health_checks),
        web.route("*", "/v1/health/state/{state:.*}", health_state),
        web.route("*", "/v1/health/service/{service:.*}", health_service),
        web.route("*", "/v1/health/connect/{service:.*}", health_connect),
        web.route("*", "/v1/health/ingress/{service:.*}", health_ingress),
    ]
