"""`?near=` sorting: order results by estimated round-trip time from a source node.

Consul's rule (agent/consul/rtt.go): no sort when there is no source or the source node has
no coordinate; otherwise a stable sort by ascending distance, nodes without a coordinate
(+Inf) keeping their order at the end. A node reports one coordinate per network segment;
consulpy has only the default segment, so the pair's segment is always "".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from consulpy.gossip.coordinate import Coordinate
from consulpy.state.store import StateStore

T = TypeVar("T")


def _coordinate(store: StateStore, node: str) -> Coordinate | None:
    row = store.coordinates.get(node, "")
    if row is None:
        return None
    try:
        return Coordinate.from_api(row["Coord"])
    except ValueError:
        return None


def sort_by_distance(
    store: StateStore, source: str, items: list[T], node_of: Callable[[T], str]
) -> list[T]:
    """`items` ordered by estimated RTT from node `source` (unchanged when it cannot be)."""
    if not source or not items:
        return items
    origin = _coordinate(store, source)
    if origin is None:
        return items
    cache: dict[str, float] = {}

    def distance(item: T) -> float:
        node = node_of(item)
        if node not in cache:
            other = _coordinate(store, node)
            ok = other is not None and origin.is_compatible_with(other)
            cache[node] = origin.distance(other) if ok and other is not None else math.inf
        return cache[node]

    return sorted(items, key=distance)


def node_field(item: dict[str, Any]) -> str:
    """The node name of a catalog node, catalog service row or health check."""
    return str(item.get("Node") or "")


def entry_node(item: dict[str, Any]) -> str:
    """The node name of a health service entry (`{"Node": {...}, "Service", "Checks"}`)."""
    return str((item.get("Node") or {}).get("Node") or "")
