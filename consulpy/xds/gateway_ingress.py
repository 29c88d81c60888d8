"""Envoy resources of an ingress gateway: the mesh's front door for clients outside it.

Each listener of the gateway's ``ingress-gateway`` config entry becomes one Envoy listener on
the gateway's address. An http-like listener routes by the request's Host header over RDS (a
virtual host per exposed service: its ``Hosts``, else ``<service>.ingress.*``); a tcp
listener proxies to its single service. Behind either, every exposed service is reached as a
sidecar reaches an upstream: its compiled discovery chain, one EDS cluster per target, mutual
TLS with the gateway's own leaf certificate (``consulpy.xds.clusters``).
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from consulpy.agent.gatewaysnapshot import (
    IngressListener,
    IngressService,
    IngressSnapshot,
)
from consulpy.agent.proxysnapshot import (
    DEFAULT_NAMESPACE,
    DEFAULT_PARTITION,
    HTTP_PROTOCOLS,
    Upstream,
)
from consulpy.util.durations import duration_from_json
from consulpy.xds.clusters import upstream_cluster
from consulpy.xds.endpoints import load_assignment
from consulpy.xds.listeners import http_connection_manager, tcp_proxy
from consulpy.xds.protoutil import (
    DOWNSTREAM_TLS,
    ROUTER,
    duration,
    extension,
    socket_address,
    to_message,
)
from consulpy.xds.routes import envoy_route
from consulpy.xds.tls import TRANSPORT_SOCKET, alpn_for

ANY_ADDRESS = "0.0.0.0"


def listener_name(snapshot: IngressSnapshot, listener: IngressListener) -> str:
    """``<protocol>:<address>:<port>``."""
    return f"{listener.protocol}:{snapshot.address or ANY_ADDRESS}:{listener.port}"


def route_name(listener: IngressListener) -> str:
    """An http listener's RouteConfiguration is named after its port, as in Consul."""
    return str(listener.port)


def default_hosts(service: str, port: int) -> list[str]:
    """``<service>.ingress.*`` and the same with the listener's port (Host carries it when
    the client used a non-default port)."""
    return [f"{service}.ingress.*", f"{service}.ingress.*:{port}"]


def _stat_prefix(snapshot: IngressSnapshot, upstream: Upstream) -> str:
    dc = upstream.datacenter or snapshot.datacenter
    return f"upstream.{upstream.destination}.{DEFAULT_NAMESPACE}.{DEFAULT_PARTITION}.{dc}"


def _catch_all(upstream: Upstream) -> list[dict[str, Any]]:
    if upstream.routes:
        return [envoy_route(r) for r in upstream.routes]
    if not upstream.targets:
        raise ValueError(f"ingress service {upstream.destination!r} has no targets")
    return [{"match": {"prefix": "/"}, "route": {"cluster": upstream.targets[0].cluster_name}}]


def build_listener(snapshot: IngressSnapshot, listener: IngressListener) -> listener_pb2.Listener:
    if listener.protocol in HTTP_PROTOCOLS:
        router = extension("envoy.filters.http.router", ROUTER, {})
        network = http_connection_manager(
            f"ingress_upstream_{listener.port}",
            listener.protocol,
            [router],
            rds_name=route_name(listener),
        )
    else:
        [service] = listener.services  # validation allows one service per tcp listener
        upstream = service.upstream
        if not upstream.targets:
            raise ValueError(f"ingress service {service.name!r} has no targets")
        network = tcp_proxy(_stat_prefix(snapshot, upstream), upstream.targets[0].cluster_name)
    chain: dict[str, Any] = {"filters": [network]}
    if listener.tls is not None:
        chain["transport_socket"] = _downstream_tls(listener)
    data = {
        "name": listener_name(snapshot, listener),
        "address": socket_address(snapshot.address or ANY_ADDRESS, listener.port),
        "traffic_direction": "OUTBOUND",
        "filter_chains": [chain],
    }
    return to_message(data, listener_pb2.Listener())


def _downstream_tls(listener: IngressListener) -> dict[str, Any]:
    """Server-side TLS for clients outside the mesh: no client certificate asked for."""
    tls = listener.tls
    assert tls is not None
    params: dict[str, Any] = {}
    if tls.min_version:
        params["tls_minimum_protocol_version"] = tls.min_version
    if tls.max_version:
        params["tls_maximum_protocol_version"] = tls.max_version
    if tls.cipher_suites:
        params["cipher_suites"] = list(tls.cipher_suites)
    common: dict[str, Any] = {
        "tls_params": params,
        "tls_certificates": [
            {
                "certificate_chain": {"inline_string": tls.cert_pem},
                "private_key": {"inline_string": tls.key_pem},
            }
        ],
    }
    alpn = alpn_for(listener.protocol)
    if alpn:
        common["alpn_protocols"] = list(alpn)
    return extension(TRANSPORT_SOCKET, DOWNSTREAM_TLS, {"common_tls_context": common})


def _header_changes(prefix: str, modifiers: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Consul's Add (appended) / Set (replaced) / Remove as Envoy's ``<prefix>_headers_to_*``."""
    mods = dict(modifiers)
    add = [
        {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
        for k, v in sorted((mods.get("Add") or {}).items())
    ] + [
        {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        for k, v in sorted((mods.get("Set") or {}).items())
    ]
    out: dict[str, Any] = {}
    if add:
        out[f"{prefix}_headers_to_add"] = add
    if mods.get("Remove"):
        out[f"{prefix}_headers_to_remove"] = list(mods["Remove"])
    return out


def build_route(listener: IngressListener) -> route_pb2.RouteConfiguration:
    """One virtual host per service, matched on the Host header."""
    hosts = []
    for service in listener.services:
        hosts.append(
            {
                "name": f"{service.name}",
                "domains": list(service.hosts) or default_hosts(service.name, listener.port),
                "routes": _catch_all(service.upstream),
                **_header_changes("request", service.request_headers),
                **_header_changes("response", service.response_headers),
            }
        )
    data = {"name": route_name(listener), "virtual_hosts": hosts, "validate_clusters": False}
    return to_message(data, route_pb2.RouteConfiguration())


def _ns_duration(value: Any) -> str:
    return duration(duration_from_json(value) / 1e9)


def _apply_service_settings(cluster: cluster_pb2.Cluster, service: IngressService) -> None:
    """The entry's connection limits (circuit breakers) and passive health check (outlier
    detection) on a cluster of the service."""
    extra: dict[str, Any] = {"name": cluster.name}
    names = ("max_connections", "max_pending_requests", "max_requests")
    thresholds = {k: v for k, v in zip(names, service.limits, strict=True) if v > 0}
    if thresholds:
        extra["circuit_breakers"] = {"thresholds": [thresholds]}
    phc = dict(service.passive_health_check)
    outlier: dict[str, Any] = {}
    if phc.get("Interval"):
        outlier["interval"] = _ns_duration(phc["Interval"])
    if phc.get("MaxFailures"):
        outlier["consecutive_5xx"] = phc["MaxFailures"]
    if phc.get("EnforcingConsecutive5xx") is not None:
        outlier["enforcing_consecutive_5xx"] = phc["EnforcingConsecutive5xx"]
    if phc.get("MaxEjectionPercent") is not None:
        outlier["max_ejection_percent"] = phc["MaxEjectionPercent"]
    if phc.get("BaseEjectionTime"):
        outlier["base_ejection_time"] = _ns_duration(phc["BaseEjectionTime"])
    if outlier:
        extra["outlier_detection"] = outlier
    if len(extra) > 1:
        cluster.MergeFrom(to_message(extra, cluster_pb2.Cluster()))


def build_resources(snapshot: IngressSnapshot) -> dict[str, list[tuple[Any, list[str]]]]:
    """``{"clusters"|"endpoints"|"listeners"|"routes": [(message, children)]}``."""
    clusters: list[tuple[Any, list[str]]] = []
    endpoints: list[tuple[Any, list[str]]] = []
    seen: set[str] = set()
    for listener in snapshot.listeners:
        for service in listener.services:
            upstream = service.upstream
            for target in upstream.targets:
                if target.cluster_name in seen:
                    continue
                seen.add(target.cluster_name)
                cluster = upstream_cluster(snapshot, upstream, target)  # type: ignore[arg-type]
                if not target.aggregate:
                    _apply_service_settings(cluster, service)
                eds = cluster.HasField("eds_cluster_config")
                clusters.append((cluster, [cluster.name] if eds else []))
                if not target.aggregate:
                    endpoints.append((load_assignment(target), []))
    listeners: list[tuple[Any, list[str]]] = []
    routes: list[tuple[Any, list[str]]] = []
    for listener in snapshot.listeners:
        http = listener.protocol in HTTP_PROTOCOLS
        listeners.append(
            (build_listener(snapshot, listener), [route_name(listener)] if http else [])
        )
        if http:
            routes.append((build_route(listener), []))
    return {"clusters": clusters, "endpoints": endpoints, "listeners": listeners, "routes": routes}
