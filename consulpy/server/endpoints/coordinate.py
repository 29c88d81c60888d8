"""Coordinate: Coordinate.Update (queued on the leader, applied in batches), the LAN
coordinate reads, and Coordinate.ListDatacenters (the servers' coordinates by datacenter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.gossip.coordinate import Coordinate, CoordinateConfig
from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import leader, local, read
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError

if TYPE_CHECKING:
    from consulpy.server.server import Server

DIMENSIONALITY = CoordinateConfig().dimensionality


@dataclass(frozen=True, slots=True)
class CoordinateUpdate:
    node: str
    coord: dict[str, Any]
    segment: str = ""


@dataclass(frozen=True, slots=True)
class ListNodes:
    segment: str | None = None  # None: every segment


@dataclass(frozen=True, slots=True)
class NodeCoordinate:
    node: str


def check_coordinate(coord: dict[str, Any]) -> dict[str, Any]:
    """The coordinate in Consul's JSON form, or CommandError with Consul's texts."""
    try:
        parsed = Coordinate.from_api(coord)
    except ValueError as exc:
        raise CommandError(f"invalid coordinate: {exc}") from exc
    if not parsed.is_valid():
        raise CommandError("invalid coordinate")
    if len(parsed.vec) != DIMENSIONALITY:
        raise CommandError("incompatible coordinate")
    return parsed.to_api()


async def update(server: Server, req: Request[CoordinateUpdate]) -> None:
    p = req.payload
    coord = check_coordinate(p.coord)
    authorize(req.token, Resource.NODE, p.node, Access.WRITE)
    server.coordinates.queue(p.node, p.segment, coord)


async def list_datacenters(server: Server, req: Request[Empty]) -> list[dict[str, Any]]:
    """Every datacenter's servers and their WAN coordinates, nearest datacenter first. A
    server in no WAN pool (ports.serf_wan = -1) shows its own datacenter's servers with their
    LAN coordinates (docs/compatibility.md)."""
    router = server.router
    if router is None:
        coords = [
            {"Node": name, "Coord": coord} for name, coord in sorted(server.server_coordinates())
        ]
        return [{"Datacenter": server.datacenter, "AreaID": "WAN", "Coordinates": coords}]
    by_dc = router.coordinates()
    return [
        {
            "Datacenter": dc,
            "AreaID": "WAN",
            "Coordinates": [
                # Node: the server's node name, without the WAN pool's ".<dc>" (what
                # `rtt -wan <node>.<dc>` matches).
                {"Node": name.removesuffix(f".{dc}"), "Coord": coord.to_api()}
                for name, coord in sorted(by_dc.get(dc, []))
            ],
        }
        for dc in router.datacenters()
    ]


async def datacenter_names(server: Server, req: Request[Empty]) -> list[str]:
    """Catalog.ListDatacenters: the datacenters of the WAN pool, nearest first."""
    router = server.router
    return router.datacenters() if router is not None else [server.datacenter]


_FILTERED = [Need(Resource.NODE, "", Access.READ, filtered=True)]

ENDPOINTS = [
    leader("Coordinate.Update", CoordinateUpdate, update),
    local("Coordinate.ListDatacenters", Empty, list_datacenters),
    local("Catalog.ListDatacenters", Empty, datacenter_names),
    read("Coordinate.ListNodes", ListNodes, reads.coordinate_list, lambda _s, _p: _FILTERED),
    read(
        "Coordinate.Node",
        NodeCoordinate,
        reads.coordinate_node,
        lambda _s, p: [Need(Resource.NODE, p.node, Access.READ)],
    ),
]
