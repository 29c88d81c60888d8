"""The per-gateway snapshots the agent hands to the xDS layer (see `proxysnapshot` for the
sidecar's): what `consulpy.agent.proxycfg_gateways` and `proxycfg_mesh_gateway` watch, as
frozen dataclasses of tuples, built with keyword arguments. `consulpy.xds.gateway_*` turn
them into Envoy resources; nothing here knows Envoy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consulpy.agent.proxysnapshot import DEFAULT_NAMESPACE, Endpoint, Upstream

# ingress gateways


@dataclass(frozen=True, kw_only=True)
class IngressService:
    """One service exposed on a listener, with its rendered discovery chain and the entry's
    settings for it (the service's own, else the entry's ``Defaults``).

    ``request_headers``/``response_headers`` are Consul header modifiers (``Add``, ``Set``,
    ``Remove``); ``limits`` are (MaxConnections, MaxPendingRequests, MaxConcurrentRequests),
    0 for unset; ``passive_health_check`` the ``PassiveHealthCheck`` object as stored.
    """

    name: str
    hosts: tuple[str, ...] = ()
    upstream: Upstream
    request_headers: tuple[tuple[str, Any], ...] = ()
    response_headers: tuple[tuple[str, Any], ...] = ()
    limits: tuple[int, int, int] = (0, 0, 0)
    passive_health_check: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class IngressTLS:
    """A TLS listener's certificate (a Connect CA leaf with the hosts as DNS SANs) and
    versions (Consul's ``TLSv1_2`` spelling is Envoy's; "" = Envoy's default)."""

    cert_pem: str
    key_pem: str
    min_version: str = ""
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()  # Envoy's (BoringSSL's) names; () = Envoy's default


@dataclass(frozen=True, kw_only=True)
class IngressListener:
    port: int
    protocol: str
    services: tuple[IngressService, ...]
    tls: IngressTLS | None = None


@dataclass(frozen=True, kw_only=True)
class IngressSnapshot:
    """Everything an ingress gateway's Envoy needs. The TLS fields carry the same names as a
    sidecar's ``ProxySnapshot`` so the upstream cluster builders serve both."""

    proxy_id: str
    service: str
    datacenter: str
    trust_domain: str
    address: str
    roots_pem: tuple[str, ...]
    leaf_cert_pem: str
    leaf_key_pem: str
    listeners: tuple[IngressListener, ...] = ()
    version: str = ""


# terminating gateways


@dataclass(frozen=True, kw_only=True)
class LinkedService:
    """One service of the gateway's ``terminating-gateway`` entry, with what it needs."""

    name: str
    protocol: str = "tcp"
    leaf_cert_pem: str
    leaf_key_pem: str
    intentions: tuple[dict[str, Any], ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    sni: str = ""
    connect_timeout_s: float = 5.0


@dataclass(frozen=True, kw_only=True)
class TerminatingSnapshot:
    proxy_id: str
    service: str
    datacenter: str
    trust_domain: str
    address: str
    port: int
    roots_pem: tuple[str, ...]
    default_allow: bool
    services: tuple[LinkedService, ...] = ()
    version: str = ""


# mesh gateways


@dataclass(frozen=True, kw_only=True)
class GatewayService:
    """A service (or one of its resolver's subsets) of the gateway's datacenter."""

    name: str
    sni: str
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RemoteDatacenter:
    """Another datacenter and the WAN addresses of its mesh gateways."""

    name: str
    cluster_name: str
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MeshGatewaySnapshot:
    """Everything a mesh gateway's Envoy needs, as of one moment."""

    proxy_id: str
    service: str
    datacenter: str
    trust_domain: str
    address: str
    port: int
    services: tuple[GatewayService, ...] = ()
    remotes: tuple[RemoteDatacenter, ...] = ()
    version: str = ""


def service_sni(service: str, datacenter: str, trust_domain: str, subset: str = "") -> str:
    """``[<subset>.]<service>.default.<dc>.internal.<trust-domain>``, as sidecars send it."""
    prefix = f"{subset}." if subset else ""
    return f"{prefix}{service}.{DEFAULT_NAMESPACE}.{datacenter}.internal.{trust_domain}"


def datacenter_cluster(datacenter: str, trust_domain: str) -> str:
    """``<dc>.internal.<trust-domain>``: the cluster of a remote datacenter's gateways."""
    return f"{datacenter}.internal.{trust_domain}"
