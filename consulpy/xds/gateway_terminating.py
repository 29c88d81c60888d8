"""Envoy resources of a terminating gateway: the mesh's door out to services without a sidecar.

Sidecars reach a linked service at the gateway (the catalog answers the service's connect
instances with the gateway's), over mutual TLS with the service's SNI. The gateway's one
listener picks a filter chain by that SNI, presents the leaf certificate of the linked
service (so the sidecar's SAN check passes), authorizes the caller with the service's
intentions exactly as a sidecar's public listener does, and forwards to a cluster of the
service's registered instances: plain TCP/HTTP, or TLS with the entry's CAFile/CertFile/
KeyFile/SNI (files Envoy reads itself, as in Consul).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import (  # noqa: F401  (registration)
    tls_inspector_pb2,
)

from consulpy.agent.gatewaysnapshot import LinkedService, TerminatingSnapshot
from consulpy.agent.proxysnapshot import (
    DEFAULT_NAMESPACE,
    DEFAULT_PARTITION,
    HTTP_PROTOCOLS,
    cluster_name,
)
from consulpy.xds import rbac
from consulpy.xds.clusters import HTTP2_PROTOCOLS
from consulpy.xds.endpoints import lb_endpoint
from consulpy.xds.listeners import http_connection_manager, tcp_proxy
from consulpy.xds.protoutil import (
    DOWNSTREAM_TLS,
    ROUTER,
    UPSTREAM_TLS,
    duration,
    extension,
    http2_protocol_options,
    socket_address,
    to_message,
)
from consulpy.xds.tls import TRANSPORT_SOCKET, alpn_for

ANY_ADDRESS = "0.0.0.0"
TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _pem(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def service_cluster(snapshot: TerminatingSnapshot, service: LinkedService) -> str:
    """The linked service's mesh name (``<svc>.default.<dc>.internal.<td>``): the SNI a
    sidecar sends, and the gateway's cluster of the external instances."""
    return cluster_name(service.name, snapshot.datacenter, snapshot.trust_domain)


def listener_name(snapshot: TerminatingSnapshot) -> str:
    """``default:<address>:<port>``, as Consul names a gateway's listener."""
    return f"default:{snapshot.address or ANY_ADDRESS}:{snapshot.port}"


def _downstream_tls(snapshot: TerminatingSnapshot, service: LinkedService) -> dict[str, Any]:
    common: dict[str, Any] = {
        "tls_params": {},
        "tls_certificates": [
            {
                "certificate_chain": {"inline_string": service.leaf_cert_pem},
                "private_key": {"inline_string": service.leaf_key_pem},
            }
        ],
        "validation_context": {
            "trusted_ca": {"inline_string": "".join(_pem(p) for p in snapshot.roots_pem)}
        },
    }
    alpn = alpn_for(service.protocol)
    if alpn:
        common["alpn_protocols"] = list(alpn)
    context = {"common_tls_context": common, "require_client_certificate": True}
    return extension(TRANSPORT_SOCKET, DOWNSTREAM_TLS, context)


def _filters(snapshot: TerminatingSnapshot, service: LinkedService) -> list[dict[str, Any]]:
    cluster = service_cluster(snapshot, service)
    stat_prefix = f"terminating_gateway.{service.name}.{DEFAULT_NAMESPACE}.{DEFAULT_PARTITION}"
    td = snapshot.trust_domain
    if service.protocol not in HTTP_PROTOCOLS:
        return [
            rbac.network_filter(service.intentions, snapshot.default_allow, td),
            tcp_proxy(stat_prefix, cluster),
        ]
    http_filters = [
        rbac.http_filter(service.intentions, snapshot.default_allow, td),
        extension("envoy.filters.http.router", ROUTER, {}),
    ]
    route_config = {
        "name": service.name,
        "virtual_hosts": [
            {
                "name": service.name,
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
            }
        ],
    }
    return [
        http_connection_manager(
            stat_prefix,
            service.protocol,
            http_filters,
            route_config=route_config,
            extra={"normalize_path": True},
        )
    ]


def build_listener(snapshot: TerminatingSnapshot) -> listener_pb2.Listener:
    """One filter chain per linked service, chosen by the SNI the sidecar sends."""
    chains = [
        {
            "filter_chain_match": {"server_names": [service_cluster(snapshot, service)]},
            "filters": _filters(snapshot, service),
            "transport_socket": _downstream_tls(snapshot, service),
        }
        for service in snapshot.services
    ]
    data = {
        "name": listener_name(snapshot),
        "address": socket_address(snapshot.address or ANY_ADDRESS, snapshot.port),
        "traffic_direction": "INBOUND",
        "listener_filters": [extension("envoy.filters.listener.tls_inspector", TLS_INSPECTOR, {})],
        "filter_chains": chains,
    }
    return to_message(data, listener_pb2.Listener())


def _upstream_tls(service: LinkedService) -> dict[str, Any] | None:
    """TLS origination to the external service when the entry names a CA (and maybe a
    client certificate)."""
    if not service.ca_file:
        return None
    common: dict[str, Any] = {
        "tls_params": {},
        "validation_context": {"trusted_ca": {"filename": service.ca_file}},
    }
    if service.cert_file and service.key_file:
        common["tls_certificates"] = [
            {
                "certificate_chain": {"filename": service.cert_file},
                "private_key": {"filename": service.key_file},
            }
        ]
    context: dict[str, Any] = {"common_tls_context": common}
    if service.sni:
        context["sni"] = service.sni
    return extension(TRANSPORT_SOCKET, UPSTREAM_TLS, context)


def build_cluster(snapshot: TerminatingSnapshot, service: LinkedService) -> cluster_pb2.Cluster:
    """The external instances, registered addresses as they are (no mesh TLS). Addresses
    that are host names make it a STRICT_DNS cluster: Envoy resolves them itself."""
    name = service_cluster(snapshot, service)
    lb = [lb_endpoint(e.address, e.port, e.healthy, e.weight) for e in service.endpoints]
    data: dict[str, Any] = {
        "name": name,
        "alt_stat_name": name,
        "type": "STATIC" if all(_is_ip(e.address) for e in service.endpoints) else "STRICT_DNS",
        "connect_timeout": duration(service.connect_timeout_s),
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": lb}] if lb else [],
        },
        "common_lb_config": {"healthy_panic_threshold": {}},
    }
    socket = _upstream_tls(service)
    if socket is not None:
        data["transport_socket"] = socket
    if service.protocol in HTTP2_PROTOCOLS:
        data["typed_extension_protocol_options"] = http2_protocol_options()
    return to_message(data, cluster_pb2.Cluster())


def build_resources(snapshot: TerminatingSnapshot) -> dict[str, list[tuple[Any, list[str]]]]:
    """``{"clusters"|"endpoints"|"listeners"|"routes": [(message, children)]}``. Without a
    linked service there is nothing to listen for, and no listener."""
    clusters: list[tuple[Any, list[str]]] = [
        (build_cluster(snapshot, s), []) for s in snapshot.services
    ]
    listeners: list[tuple[Any, list[str]]] = []
    if snapshot.services:
        listeners.append((build_listener(snapshot), []))
    return {"clusters": clusters, "endpoints": [], "listeners": listeners, "routes": []}
