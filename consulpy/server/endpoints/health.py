"""Health: the health reads (check state is written through Catalog.Register)."""

from __future__ import annotations

from dataclasses import dataclass, field

from consulpy.server import reads
from consulpy.server.endpoints.base import read
from consulpy.server.endpoints.catalog import FILTERED, NodeMeta, node_needs, service_needs


@dataclass(frozen=True, slots=True)
class NodeChecks:
    node: str
    filter: str = ""


@dataclass(frozen=True, slots=True)
class ServiceChecks:
    service: str
    node_meta: NodeMeta = field(default_factory=list)
    filter: str = ""
    near: str = ""


@dataclass(frozen=True, slots=True)
class ChecksInState:
    state: str  # passing, warning, critical or any
    node_meta: NodeMeta = field(default_factory=list)
    filter: str = ""
    near: str = ""


@dataclass(frozen=True, slots=True)
class HealthServiceNodes:
    service: str
    tags: list[str] = field(default_factory=list)
    node_meta: NodeMeta = field(default_factory=list)
    passing: bool = False
    connect: bool = False
    ingress: bool = False  # the ingress gateways routing to `service` (health/ingress)
    filter: str = ""
    near: str = ""


ENDPOINTS = [
    read("Health.NodeChecks", NodeChecks, reads.health_node, lambda _s, p: node_needs(p.node)),
    read(
        "Health.ServiceChecks",
        ServiceChecks,
        reads.health_checks,
        lambda _s, p: service_needs(p.service),
    ),
    read("Health.ChecksInState", ChecksInState, reads.health_state, lambda _s, _p: FILTERED),
    read(
        "Health.ServiceNodes",
        HealthServiceNodes,
        reads.health_service,
        lambda _s, p: service_needs(p.service),
    ),
]
