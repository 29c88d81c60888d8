"""EDS: one ClusterLoadAssignment per target cluster."""

from __future__ import annotations

from typing import Any

from envoy.config.endpoint.v3 import endpoint_pb2

from consulpy.agent.proxysnapshot import ProxySnapshot, Target
from consulpy.xds.protoutil import socket_address, to_message

MIN_WEIGHT, MAX_WEIGHT = 1, 128


def lb_endpoint(address: str, port: int, healthy: bool, weight: int) -> dict[str, Any]:
    """One instance. Weight 0 means "send nothing": Envoy refuses 0, so it becomes an
    unhealthy endpoint of weight 1; other weights are clamped to Consul's 1..128."""
    if weight <= 0:
        healthy, weight = False, MIN_WEIGHT
    return {
        "endpoint": {"address": socket_address(address, port)},
        "health_status": "HEALTHY" if healthy else "UNHEALTHY",
        "load_balancing_weight": min(max(weight, MIN_WEIGHT), MAX_WEIGHT),
    }


def load_assignment(target: Target) -> endpoint_pb2.ClusterLoadAssignment:
    lb = [lb_endpoint(e.address, e.port, e.healthy, e.weight) for e in target.endpoints]
    data: dict[str, Any] = {"cluster_name": target.cluster_name, "endpoints": []}
    if lb:
        data["endpoints"] = [{"lb_endpoints": lb}]
    return to_message(data, endpoint_pb2.ClusterLoadAssignment())


def build_endpoints(snapshot: ProxySnapshot) -> list[endpoint_pb2.ClusterLoadAssignment]:
    out = []
    seen: set[str] = set()
    for upstream in snapshot.upstreams:
        for target in upstream.targets:
            if target.aggregate:
                continue  # its member clusters carry the endpoints
            if target.cluster_name not in seen:
                seen.add(target.cluster_name)
                out.append(load_assignment(target))
    return out
