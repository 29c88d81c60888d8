"""Catalog: Catalog.Register / Catalog.Deregister (HTTP /v1/catalog and every agent's
anti-entropy sync) and the catalog reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class CatalogRegister:
    """A node with, optionally, one service and checks (Consul's RegisterRequest fields)."""

    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CatalogDeregister:
    node: str
    service_id: str = ""
    check_id: str = ""


def _datacenter(server: Server, dc: Any) -> str:
    if dc in ("", None):
        return server.datacenter
    if dc != server.datacenter:
        raise CommandError("No path to datacenter")
    return str(dc)


def _validate_register(server: Server, request: dict[str, Any]) -> dict[str, Any]:
    node = request.get("Node")
    if not isinstance(node, str) or not node:
        raise CommandError("Must provide node")
    if not isinstance(request.get("Address", ""), str):
        raise RequestError("Address must be a string")
    service = request.get("Service")
    if service is not None and not isinstance(service, dict):
        raise RequestError("Service must be an object")
    checks = request.get("Checks") or []
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise RequestError("Checks must be a list of objects")
    return dict(request, Datacenter=_datacenter(server, request.get("Datacenter")))


async def register(server: Server, req: Request[CatalogRegister]) -> Any:
    request = _validate_register(server, req.payload.request)
    authorize(req.token, f"node:{request['Node']}", "write")
    if request.get("Service"):
        authorize(req.token, f"service:{request['Service'].get('Service', '')}", "write")
    return await server.propose(C.register(request, ts=server.now()))


async def deregister(server: Server, req: Request[CatalogDeregister]) -> Any:
    p = req.payload
    if not p.node:
        raise CommandError("Must provide node")
    authorize(req.token, f"node:{p.node}", "write")
    request = {"Node": p.node, "ServiceID": p.service_id, "CheckID": p.check_id}
    return await server.propose(C.deregister(request, ts=server.now()))


ENDPOINTS = [
    write("Catalog.Register", CatalogRegister, register),
    write("Catalog.Deregister", CatalogDeregister, deregister),
    read("Catalog.ListNodes", reads.catalog_nodes),
    read("Catalog.ListServices", reads.catalog_services),
    read("Catalog.ServiceNodes", reads.catalog_service),
    read("Catalog.NodeServices", reads.catalog_node),
]
