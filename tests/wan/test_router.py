"""The datacenter router on hand-made WAN members and coordinates."""

from __future__ import annotations

from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import Member, MemberStatus
from consulpy.server.router import DatacenterRouter


def member(name: str, dc: str, port: int, status: MemberStatus = MemberStatus.ALIVE) -> Member:
    tags = {"role": "consul", "dc": dc, "port": str(port)}
    return Member(name, "127.0.0.1", 8302, tags, status, 1, 5, 2, 2, 5, 5)


def at(x: float) -> Coordinate:
    """A coordinate x seconds along the first axis (no height, no adjustment)."""
    return Coordinate((x,) + (0.0,) * 7, 0.1, 0.0, 0.0)


MEMBERS = [
    member("a.dc1", "dc1", 1),
    member("b.dc2", "dc2", 2),
    member("c.dc2", "dc2", 3),
    member("d.dc3", "dc3", 4),
    member("e.dc3", "dc3", 5, MemberStatus.FAILED),
    member("f.dc4", "dc4", 6, MemberStatus.LEFT),
    Member("plain-serf", "127.0.0.2", 7946, {}, MemberStatus.ALIVE, 1, 5, 2, 2, 5, 5),
]


def router(coords: dict[str | None, Coordinate]) -> DatacenterRouter:
    return DatacenterRouter("dc1", lambda: MEMBERS, coords.get)


def test_nearest_datacenters_and_servers_first() -> None:
    r = router(
        {
            None: at(0.0),
            "a.dc1": at(0.001),
            "b.dc2": at(0.300),
            "c.dc2": at(0.100),
            "d.dc3": at(0.050),
            "e.dc3": at(0.060),
        }
    )
    assert r.datacenters() == ["dc1", "dc3", "dc2"]
    assert r.servers("dc2") == ["127.0.0.1:3", "127.0.0.1:2"]
    # A failed server is no route; a left one is forgotten.
    assert r.servers("dc3") == ["127.0.0.1:4"]
    assert r.servers("dc4") == [] and not r.known("dc4")
    assert r.known("dc3") and not r.known("dc9") and r.servers("dc9") == []


def test_without_coordinates_ours_first_then_by_name() -> None:
    r = router({})
    assert r.datacenters() == ["dc1", "dc2", "dc3"]
    assert r.servers("dc2") == ["127.0.0.1:2", "127.0.0.1:3"]
