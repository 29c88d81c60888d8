"""Catalog: Catalog.Register / Catalog.Deregister (HTTP /v1/catalog and every agent's
anti-entropy sync) and the catalog reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.endpoints.rows import check_register
from consulpy.server.errors import CommandError
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


async def register(server: Server, req: Request[CatalogRegister]) -> Any:
    request = check_register(req.payload.request, server.datacenter)
    authorize(req.token, Resource.NODE, request["Node"], Access.WRITE)
    service = request.get("Service")
    if service:
        authorize(req.token, Resource.SERVICE, service.get("Service", ""), Access.WRITE)
        destination = (service.get("Proxy") or {}).get("DestinationServiceName")
        if isinstance(destination, str) and destination:
            authorize(req.token, Resource.SERVICE, destination, Access.WRITE)
    return await server.propose(C.register(request, ts=server.now()))


async def deregister(server: Server, req: Request[CatalogDeregister]) -> Any:
    p = req.payload
    if not p.node:
        raise CommandError("Must provide node")
    authorize(req.token, Resource.NODE, p.node, Access.WRITE)
    if p.service_id:
        service = server.store.catalog.service(p.node, p.service_id)
        name = service["Service"] if service is not None else ""
        authorize(req.token, Resource.SERVICE, name, Access.WRITE)
    request = {"Node": p.node, "ServiceID": p.service_id, "CheckID": p.check_id}
    return await server.propose(C.deregister(request, ts=server.now()))


NodeMeta = list[list[str]]  # node-meta filter pairs [key, value]


@dataclass(frozen=True, slots=True)
class ListNodes:
    node_meta: NodeMeta = field(default_factory=list)
    filter: str = ""
    near: str = ""  # a node name: sort by estimated RTT from it (`_agent` resolved by the agent)


@dataclass(frozen=True, slots=True)
class ListServices:
    node_meta: NodeMeta = field(default_factory=list)
    filter: str = ""


@dataclass(frozen=True, slots=True)
class ServiceNodes:
    service: str
    tags: list[str] = field(default_factory=list)
    node_meta: NodeMeta = field(default_factory=list)
    connect: bool = False
    filter: str = ""
    near: str = ""


@dataclass(frozen=True, slots=True)
class NodeServices:
    node: str
    as_list: bool = False
    filter: str = ""


# Catalog and health lists are filtered per item by node:read and service:read (Consul).
FILTERED = [
    Need(Resource.NODE, "", Access.READ, filtered=True),
    Need(Resource.SERVICE, "", Access.READ, filtered=True),
]


def service_needs(name: str) -> list[Need]:
    return [Need(Resource.SERVICE, name, Access.READ), *FILTERED]


def node_needs(name: str) -> list[Need]:
    return [Need(Resource.NODE, name, Access.READ), *FILTERED]


@dataclass(frozen=True, slots=True)
class GatewayServices:
    gateway: str


ENDPOINTS = [
    write("Catalog.Register", CatalogRegister, register),
    write("Catalog.Deregister", CatalogDeregister, deregister),
    read("Catalog.ListNodes", ListNodes, reads.catalog_nodes, lambda _s, _p: FILTERED),
    read("Catalog.ListServices", ListServices, reads.catalog_services, lambda _s, _p: FILTERED),
    read(
        "Catalog.ServiceNodes",
        ServiceNodes,
        reads.catalog_service,
        lambda _s, p: service_needs(p.service),
    ),
    read(
        "Catalog.NodeServices", NodeServices, reads.catalog_node, lambda _s, p: node_needs(p.node)
    ),
    # service:read on the gateway; each linked service is then kept by service:read on it.
    read(
        "Catalog.GatewayServices",
        GatewayServices,
        reads.catalog_gateway_services,
        lambda _s, p: service_needs(p.gateway),
    ),
]
