"""A mesh gateway's Envoy resources: route mutual-TLS connections by SNI, never terminate them.

A mesh gateway sits at a datacenter's edge. Sidecars of other datacenters (or of this one, in
`local` mode) open TLS to it with the SNI of the service they want,
`[<subset>.]<service>.<namespace>.<dc>.internal.<trust-domain>`; the gateway reads the SNI with
Envoy's TLS inspector and forwards the still-encrypted bytes:

- to the service's connect endpoints (its sidecars) when `<dc>` is the gateway's own, one
  filter chain and one EDS cluster per service and per subset of its service-resolver
  (endpoints narrowed by the subset's `Filter` and `OnlyPassing`), named by the SNI;
- to the mesh gateways of `<dc>` (their WAN addresses) otherwise, one filter chain per remote
  datacenter matching `*.<dc>.internal.<trust-domain>` and one cluster `<dc>.internal.<td>`;
- any other SNI, by a last catch-all chain, to the cluster the SNI names (Envoy's
  `sni_cluster`), which closes the connection when there is none.

The gateway holds no certificate that the hop uses: the client's sidecar and the service's
sidecar do the mutual TLS end to end, so identity checks and intentions stay where they are.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import (  # noqa: F401  (for ParseDict)
    tls_inspector_pb2,
)
from envoy.extensions.filters.network.sni_cluster.v3 import (  # noqa: F401  (for ParseDict)
    sni_cluster_pb2,
)

from consulpy.agent.gatewaysnapshot import MeshGatewaySnapshot
from consulpy.agent.proxysnapshot import Endpoint
from consulpy.xds.endpoints import lb_endpoint
from consulpy.xds.protoutil import (
    TCP_PROXY,
    duration,
    extension,
    socket_address,
    to_message,
    typed,
)

TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS_INSPECTOR_CONFIG = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
SNI_CLUSTER = "envoy.filters.network.sni_cluster"
SNI_CLUSTER_CONFIG = "envoy.extensions.filters.network.sni_cluster.v3.SniCluster"
CONNECT_TIMEOUT_S = 5.0


def listener_name(snapshot: MeshGatewaySnapshot) -> str:
    return f"default:{snapshot.address or '0.0.0.0'}:{snapshot.port}"


def _tcp_chain(server_names: list[str], cluster: str, stat_prefix: str) -> dict[str, Any]:
    return {
        "filter_chain_match": {"server_names": server_names},
        "filters": [
            {
                "name": "envoy.filters.network.tcp_proxy",
                "typed_config": typed(TCP_PROXY, stat_prefix=stat_prefix, cluster=cluster),
            }
        ],
    }


def gateway_listener(snapshot: MeshGatewaySnapshot) -> listener_pb2.Listener:
    """One listener; a filter chain per local service SNI and per remote datacenter, and a
    catch-all."""
    chains = [
        _tcp_chain([svc.sni], svc.sni, "mesh_gateway_local." + svc.sni.split(".internal.")[0])
        for svc in snapshot.services
    ]
    chains += [
        _tcp_chain(
            [f"*.{remote.cluster_name}"],
            remote.cluster_name,
            f"mesh_gateway_remote.default.{remote.name}",
        )
        for remote in snapshot.remotes
    ]
    # Last, matching any SNI: the cluster named by the SNI itself, if there is one (else
    # Envoy closes the connection), as Consul's catch-all chain does.
    chains.append(
        {
            "filters": [
                extension(SNI_CLUSTER, SNI_CLUSTER_CONFIG, {}),
                {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": typed(
                        TCP_PROXY, stat_prefix="mesh_gateway_local_catchall", cluster=""
                    ),
                },
            ]
        }
    )
    data: dict[str, Any] = {
        "name": listener_name(snapshot),
        "address": socket_address(snapshot.address or "0.0.0.0", snapshot.port),
        "listener_filters": [extension(TLS_INSPECTOR, TLS_INSPECTOR_CONFIG, {})],
        "filter_chains": chains,
    }
    return to_message(data, listener_pb2.Listener())


def _eds_cluster(name: str) -> cluster_pb2.Cluster:
    data: dict[str, Any] = {
        "name": name,
        "alt_stat_name": name,
        "type": "EDS",
        "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}},
        "connect_timeout": duration(CONNECT_TIMEOUT_S),
        "outlier_detection": {},
        "common_lb_config": {"healthy_panic_threshold": {}},
    }
    return to_message(data, cluster_pb2.Cluster())


def _assignment(name: str, endpoints: tuple[Endpoint, ...]) -> endpoint_pb2.ClusterLoadAssignment:
    lb = [lb_endpoint(e.address, e.port, e.healthy, e.weight) for e in endpoints]
    data: dict[str, Any] = {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}] if lb else []}
    return to_message(data, endpoint_pb2.ClusterLoadAssignment())


def gateway_clusters(
    snapshot: MeshGatewaySnapshot,
) -> list[tuple[cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment]]:
    """Each cluster with its endpoints: plain TCP (the bytes are already TLS)."""
    named = [(s.sni, s.endpoints) for s in snapshot.services]
    named += [(r.cluster_name, r.endpoints) for r in snapshot.remotes]
    return [(_eds_cluster(name), _assignment(name, eps)) for name, eps in named]


def build_resources(snapshot: MeshGatewaySnapshot) -> dict[str, list[tuple[Any, list[str]]]]:
    """``{"clusters"|"endpoints"|"listeners"|"routes": [(message, children)]}``: each EDS
    cluster with its assignment as child, and the one listener."""
    pairs = gateway_clusters(snapshot)
    return {
        "clusters": [(c, [c.name]) for c, _ in pairs],
        "endpoints": [(e, []) for _, e in pairs],
        "listeners": [(gateway_listener(snapshot), [])],
        "routes": [],
    }
