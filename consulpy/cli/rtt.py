"""`consulpy rtt [-wan] <node1> [<node2>]`: estimated round-trip time between two nodes,
from their network coordinates, as `consul rtt` prints it."""

from __future__ import annotations

import argparse
from typing import Any

from consulpy.cli.client import APIError, Client, add_http_flags, fail
from consulpy.gossip.coordinate import Coordinate
from consulpy.util.goquote import go_quote


def _distance_ms(a: dict[str, Any], b: dict[str, Any]) -> float:
    seconds = Coordinate.from_api(a).distance(Coordinate.from_api(b))
    return int(seconds * 1e9) / 1e6  # Go rounds to a time.Duration (whole ns) first


def _lan(client: Client, nodes: list[str]) -> tuple[dict[str, Any] | None, ...]:
    entries = client.request("GET", "/v1/coordinate/nodes").json() or []
    found: list[dict[str, Any] | None] = [None, None]
    for entry in entries:
        for i, name in enumerate(nodes):
            if found[i] is None and entry["Node"].lower() == name.lower():
                found[i] = entry["Coord"]
    return tuple(found)


def _wan(client: Client, nodes: list[str]) -> tuple[dict[str, Any] | None, ...]:
    """Nodes are `<node>.<datacenter>`: the node matched case-insensitively, the DC exactly."""
    wanted = [n.split(".") for n in nodes]
    found: list[dict[str, Any] | None] = [None, None]
    for dc in client.request("GET", "/v1/coordinate/datacenters").json() or []:
        for entry in dc.get("Coordinates") or []:
            for i, (node, datacenter) in enumerate(wanted):
                if (
                    found[i] is None
                    and dc["Datacenter"] == datacenter
                    and entry["Node"].lower() == node.lower()
                ):
                    found[i] = entry["Coord"]
    return tuple(found)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="consulpy rtt", allow_abbrev=False)
    add_http_flags(parser)
    parser.add_argument("-wan", "--wan", action="store_true")
    parser.add_argument("nodes", nargs="*")
    args = parser.parse_args(argv)
    nodes: list[str] = list(args.nodes)
    if not 1 <= len(nodes) <= 2:
        return fail("One or two node names must be specified")
    client = Client.from_args(args)
    try:
        if len(nodes) == 1:
            config = client.request("GET", "/v1/agent/self").json()["Config"]
            me = config["NodeName"]
            nodes.append(f"{me}.{config['Datacenter']}" if args.wan else me)
        if args.wan:
            if not all(len(n.split(".")) == 2 for n in nodes):
                return fail("Node names must be specified as <node name>.<datacenter> with -wan")
            coords = _wan(client, nodes)
        else:
            coords = _lan(client, nodes)
    except APIError as exc:
        return fail(f"Error getting coordinates: {exc}")
    for name, coord in zip(nodes, coords, strict=True):
        if coord is None:
            return fail(f"Could not find a coordinate for node {go_quote(name)}")
    a, b = coords
    assert a is not None and b is not None
    source = "WAN" if args.wan else "LAN"
    print(
        f"Estimated {nodes[0]} <-> {nodes[1]} rtt: {_distance_ms(a, b):.3f} ms "
        f"(using {source} coordinates)"
    )
    return 0
