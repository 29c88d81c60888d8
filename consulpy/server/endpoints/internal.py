"""Internal: the reads the web UI makes (`/v1/internal/ui/*`), named as in Consul.

Each read filters by ACL while it reads (see `consulpy.server.ui_reads`), so its needs here
are only the lists' filtered needs: a token that may read nothing gets empty answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from consulpy.server import ui_reads
from consulpy.server.endpoints.base import read
from consulpy.server.endpoints.catalog import FILTERED


@dataclass(frozen=True, slots=True)
class NodeDump:
    filter: str = ""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node: str
    filter: str = ""


@dataclass(frozen=True, slots=True)
class ServiceDump:
    filter: str = ""


@dataclass(frozen=True, slots=True)
class ServiceTopology:
    service: str
    kind: str = ""
    # The decision with no matching intention (the agent's ACL default policy).
    default_allow: bool = True
    filter: str = ""


@dataclass(frozen=True, slots=True)
class GatewayServiceNodes:
    gateway: str
    filter: str = ""


@dataclass(frozen=True, slots=True)
class CatalogOverview:
    filter: str = ""


ENDPOINTS = [
    read("Internal.NodeDump", NodeDump, ui_reads.ui_nodes, lambda _s, _p: FILTERED),
    read("Internal.NodeInfo", NodeInfo, ui_reads.ui_node, lambda _s, _p: FILTERED),
    read("Internal.ServiceDump", ServiceDump, ui_reads.ui_services, lambda _s, _p: FILTERED),
    read(
        "Internal.ServiceTopology",
        ServiceTopology,
        ui_reads.ui_topology,
        lambda _s, _p: FILTERED,
    ),
    read(
        "Internal.GatewayServiceNodes",
        GatewayServiceNodes,
        ui_reads.ui_gateway_services,
        lambda _s, _p: FILTERED,
    ),
    read(
        "Internal.CatalogOverview",
        CatalogOverview,
        ui_reads.ui_catalog_overview,
        lambda _s, _p: FILTERED,
    ),
]
