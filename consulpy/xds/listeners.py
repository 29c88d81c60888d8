"""LDS: the public (inbound, mutual TLS, RBAC) listener and one outbound listener per
upstream."""

from __future__ import annotations

from typing import Any

from envoy.config.listener.v3 import listener_pb2

from consulpy.agent.proxysnapshot import HTTP_PROTOCOLS, ProxySnapshot, Upstream
from consulpy.xds import rbac
from consulpy.xds.clusters import HTTP2_PROTOCOLS, LOCAL_APP
from consulpy.xds.naming import (
    PUBLIC_LISTENER,
    public_address,
    public_listener_name,
    upstream_listener_name,
    upstream_stat_prefix,
)
from consulpy.xds.protoutil import (
    CONNECTION_LIMIT,
    GRPC_BRIDGE,
    GRPC_STATS,
    HCM,
    ROUTER,
    TCP_PROXY,
    duration,
    extension,
    socket_address,
    to_message,
)
from consulpy.xds.routes import uses_rds, virtual_host
from consulpy.xds.tls import downstream_socket

XFCC_DETAILS = {"subject": True, "cert": True, "chain": True, "dns": True, "uri": True}


def _router() -> dict[str, Any]:
    return extension("envoy.filters.http.router", ROUTER, {})


def tcp_proxy(stat_prefix: str, cluster: str) -> dict[str, Any]:
    return extension(
        "envoy.filters.network.tcp_proxy",
        TCP_PROXY,
        {"stat_prefix": stat_prefix, "cluster": cluster},
    )


def http_connection_manager(
    stat_prefix: str,
    protocol: str,
    http_filters: list[dict[str, Any]],
    *,
    route_config: dict[str, Any] | None = None,
    rds_name: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "stat_prefix": stat_prefix,
        "http_filters": http_filters,
        "tracing": {"random_sampling": {}},
    }
    if rds_name:
        config["rds"] = {
            "config_source": {"ads": {}, "resource_api_version": "V3"},
            "route_config_name": rds_name,
        }
    else:
        config["route_config"] = route_config
    if protocol in HTTP2_PROTOCOLS:
        config["http2_protocol_options"] = {}
    else:
        config["upgrade_configs"] = [{"upgrade_type": "websocket"}]
    config.update(extra or {})
    return extension("envoy.filters.network.http_connection_manager", HCM, config)


def _public_filters(snapshot: ProxySnapshot) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if snapshot.max_inbound_connections > 0:
        filters.append(
            extension(
                "envoy.filters.network.connection_limit",
                CONNECTION_LIMIT,
                {
                    "stat_prefix": "inbound_connection_limit",
                    "max_connections": snapshot.max_inbound_connections,
                },
            )
        )
    if snapshot.protocol not in HTTP_PROTOCOLS:
        filters.append(
            rbac.network_filter(snapshot.intentions, snapshot.default_allow, snapshot.trust_domain)
        )
        filters.append(tcp_proxy(PUBLIC_LISTENER, LOCAL_APP))
        return filters

    http_filters = [
        rbac.http_filter(snapshot.intentions, snapshot.default_allow, snapshot.trust_domain)
    ]
    if snapshot.protocol == "grpc":
        http_filters.append(extension("envoy.filters.http.grpc_http1_bridge", GRPC_BRIDGE, {}))
        http_filters.append(
            extension("envoy.filters.http.grpc_stats", GRPC_STATS, {"stats_for_all_methods": True})
        )
    http_filters.append(_router())
    action: dict[str, Any] = {"cluster": LOCAL_APP}
    if snapshot.local_request_timeout_s > 0:
        action["timeout"] = duration(snapshot.local_request_timeout_s)
    route_config = {
        "name": PUBLIC_LISTENER,
        "virtual_hosts": [
            virtual_host(PUBLIC_LISTENER, [{"match": {"prefix": "/"}, "route": action}])
        ],
    }
    # RBAC matches paths as received: normalize them first, or "/public/../admin" would
    # slip past a rule about "/admin".
    extra: dict[str, Any] = {"normalize_path": True}
    if not snapshot.sanitize_xfcc:
        extra["forward_client_cert_details"] = "APPEND_FORWARD"
        extra["set_current_client_cert_details"] = XFCC_DETAILS
    filters.append(
        http_connection_manager(
            PUBLIC_LISTENER, snapshot.protocol, http_filters, route_config=route_config, extra=extra
        )
    )
    return filters


def public_listener(snapshot: ProxySnapshot) -> listener_pb2.Listener:
    data = {
        "name": public_listener_name(snapshot),
        "address": socket_address(public_address(snapshot), snapshot.public_port),
        "traffic_direction": "INBOUND",
        "filter_chains": [
            {"filters": _public_filters(snapshot), "transport_socket": downstream_socket(snapshot)}
        ],
    }
    return to_message(data, listener_pb2.Listener())


def _upstream_filter(snapshot: ProxySnapshot, upstream: Upstream) -> dict[str, Any]:
    stat_prefix = upstream_stat_prefix(snapshot, upstream)
    if uses_rds(upstream):
        return http_connection_manager(
            stat_prefix, upstream.protocol, [_router()], rds_name=upstream.id
        )
    if not upstream.targets:
        raise ValueError(f"upstream {upstream.id!r} has neither targets nor routes")
    cluster = upstream.targets[0].cluster_name
    if upstream.protocol not in HTTP_PROTOCOLS:
        return tcp_proxy(stat_prefix, cluster)
    route_config = {
        "name": upstream.id,
        "virtual_hosts": [
            virtual_host(upstream.id, [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}])
        ],
    }
    return http_connection_manager(
        stat_prefix, upstream.protocol, [_router()], route_config=route_config
    )


def upstream_listener(snapshot: ProxySnapshot, upstream: Upstream) -> listener_pb2.Listener:
    """Plaintext from the local app on the bind address; mTLS starts at the cluster."""
    data = {
        "name": upstream_listener_name(upstream),
        "address": socket_address(upstream.local_bind_address, upstream.local_bind_port),
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [_upstream_filter(snapshot, upstream)]}],
    }
    return to_message(data, listener_pb2.Listener())


def build_listeners(snapshot: ProxySnapshot) -> list[listener_pb2.Listener]:
    return [public_listener(snapshot)] + [
        upstream_listener(snapshot, u) for u in snapshot.upstreams
    ]
