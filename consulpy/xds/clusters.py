"""CDS: the ``local_app`` cluster and one EDS cluster per upstream target."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from consulpy.agent.proxysnapshot import ProxySnapshot, Target, Upstream
from consulpy.xds.protoutil import (
    duration,
    extension,
    http2_protocol_options,
    socket_address,
    to_message,
)
from consulpy.xds.tls import upstream_socket

LOCAL_APP = "local_app"
AGGREGATE = "envoy.clusters.aggregate"
AGGREGATE_CONFIG = "envoy.extensions.clusters.aggregate.v3.ClusterConfig"
HTTP2_PROTOCOLS = ("http2", "grpc")


def local_app_cluster(snapshot: ProxySnapshot) -> cluster_pb2.Cluster:
    """The application behind this sidecar, reached in plaintext on the loopback."""
    data: dict[str, Any] = {
        "name": LOCAL_APP,
        "type": "STATIC",
        "connect_timeout": duration(snapshot.local_connect_timeout_s),
        "load_assignment": {
            "cluster_name": LOCAL_APP,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": socket_address(
                                    snapshot.local_address, snapshot.local_port
                                )
                            }
                        }
                    ]
                }
            ],
        },
    }
    if snapshot.protocol in HTTP2_PROTOCOLS:
        data["typed_extension_protocol_options"] = http2_protocol_options()
    return to_message(data, cluster_pb2.Cluster())


def upstream_cluster(
    snapshot: ProxySnapshot, upstream: Upstream, target: Target
) -> cluster_pb2.Cluster:
    """A target's cluster: endpoints over EDS, mutual TLS that pins the target's identity.

    Panic mode is off (threshold 0): Envoy never sends traffic to instances the catalog
    marked unhealthy, even when all of them are.
    """
    if target.aggregate:
        return aggregate_cluster(target)
    data: dict[str, Any] = {
        "name": target.cluster_name,
        "alt_stat_name": target.cluster_name,
        "type": "EDS",
        "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}},
        "connect_timeout": duration(target.connect_timeout_s),
        "circuit_breakers": {},
        "outlier_detection": {},
        "common_lb_config": {"healthy_panic_threshold": {}},
        "transport_socket": upstream_socket(snapshot, target, upstream.protocol),
    }
    if upstream.protocol in HTTP2_PROTOCOLS:
        data["typed_extension_protocol_options"] = http2_protocol_options()
    return to_message(data, cluster_pb2.Cluster())


def aggregate_cluster(target: Target) -> cluster_pb2.Cluster:
    """A resolver with failover: Envoy's aggregate cluster tries its clusters in order (the
    primary, then each failover target) and uses the first with healthy hosts."""
    config = {"clusters": list(target.aggregate)}
    data: dict[str, Any] = {
        "name": target.cluster_name,
        "alt_stat_name": target.cluster_name,
        "connect_timeout": duration(target.connect_timeout_s),
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": extension(AGGREGATE, AGGREGATE_CONFIG, config),
    }
    return to_message(data, cluster_pb2.Cluster())


def build_clusters(snapshot: ProxySnapshot) -> list[cluster_pb2.Cluster]:
    """``local_app`` then each distinct target cluster (first upstream that names it wins)."""
    out = [local_app_cluster(snapshot)]
    seen = {LOCAL_APP}
    for upstream in snapshot.upstreams:
        for target in upstream.targets:
            if target.cluster_name in seen:
                continue
            seen.add(target.cluster_name)
            out.append(upstream_cluster(snapshot, upstream, target))
    return out
