"""The datacenter router: which servers of another datacenter a request with `?dc=` goes to.

Consul's servers learn every datacenter from the WAN gossip pool: each server is a WAN member
named `<node>.<dc>` with the tags `role=consul`, `dc` and `port` (its RPC port). A request for
another datacenter goes to one of that datacenter's alive servers, nearest first by WAN
coordinates when they are known, over the ordinary RPC port. The target datacenter of a
request travels with it in `Request.datacenter`; the HTTP layer sets it for the request being
served through `TARGET_DC` (a context variable, so delegates need no extra parameter).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import Member, MemberStatus

# The datacenter the request being served asked for ("" : the local one).
TARGET_DC: contextvars.ContextVar[str] = contextvars.ContextVar("consulpy_target_dc", default="")


def target_dc(local: str) -> str:
    """The datacenter the current request is for: `?dc=` when given, else `local`."""
    return TARGET_DC.get() or local


@dataclass(frozen=True, slots=True)
class WanServer:
    name: str  # <node>.<dc>
    datacenter: str
    rpc_address: str  # host:port
    alive: bool


def wan_server(m: Member) -> WanServer | None:
    """A WAN member as a server of its datacenter; None for anything else in the pool (a
    plain serf agent, a member without Consul's tags)."""
    tags = m.tags
    if tags.get("role") != "consul" or not tags.get("dc"):
        return None
    port = tags.get("port") or "8300"
    host = f"[{m.addr}]" if ":" in m.addr else m.addr
    return WanServer(m.name, tags["dc"], f"{host}:{port}", m.status == MemberStatus.ALIVE)


class DatacenterRouter:
    """Servers per datacenter from the WAN members, nearest first."""

    def __init__(
        self,
        local_dc: str,
        members: Callable[[], Iterable[Member]],
        coordinate: Callable[[str | None], Coordinate | None],
    ) -> None:
        self.local_dc = local_dc
        self._members = members
        self._coordinate = coordinate

    def _servers(self) -> list[WanServer]:
        out = []
        for m in self._members():
            if m.status == MemberStatus.LEFT:
                continue
            s = wan_server(m)
            if s is not None:
                out.append(s)
        return out

    def _rtt(self, name: str) -> float | None:
        ours, theirs = self._coordinate(None), self._coordinate(name)
        if ours is None or theirs is None or not ours.is_compatible_with(theirs):
            return None
        return ours.distance(theirs)

    def known(self, dc: str) -> bool:
        """Whether any server of `dc` (alive or failed) is in the WAN pool."""
        return dc == self.local_dc or any(s.datacenter == dc for s in self._servers())

    def servers(self, dc: str) -> list[str]:
        """RPC addresses of `dc`'s alive servers, nearest first ([] when none is alive)."""
        alive = [s for s in self._servers() if s.datacenter == dc and s.alive]
        inf = float("inf")
        alive.sort(key=lambda s: (r if (r := self._rtt(s.name)) is not None else inf, s.name))
        return [s.rpc_address for s in alive]

    def datacenters(self) -> list[str]:
        """Every datacenter in the pool, ours first (distance 0), the others by the median
        estimated RTT to their servers (unknown coordinate: infinitely far), then by name, as
        Consul's GetDatacentersByDistance."""
        rtts: dict[str, list[float]] = {self.local_dc: [0.0]}
        for s in self._servers():
            if s.datacenter == self.local_dc:
                continue
            rtt = self._rtt(s.name)
            rtts.setdefault(s.datacenter, []).append(float("inf") if rtt is None else rtt)

        def key(dc: str) -> tuple[float, str]:
            ordered = sorted(rtts[dc])
            return (ordered[len(ordered) // 2], dc)

        return sorted(rtts, key=key)

    def coordinates(self) -> dict[str, list[tuple[str, Coordinate]]]:
        """The known WAN coordinates of each datacenter's servers (Coordinate.ListDatacenters)."""
        out: dict[str, list[tuple[str, Coordinate]]] = {}
        for s in self._servers():
            coord = self._coordinate(s.name)
            out.setdefault(s.datacenter, [])
            if coord is not None:
                out[s.datacenter].append((s.name, coord))
        return out
