"""The immutable per-proxy snapshot that the agent hands to the xDS layer.

The agent owns the watches (catalog, intentions, CA roots, leaf certificate, config entries)
and the compiled discovery chains; whenever one of them changes it builds a new
``ProxySnapshot`` and publishes it. Everything in ``consulpy.xds`` is a pure function of the
snapshot (resources) or a consumer of a stream of snapshots (the ADS server), so a snapshot
must already carry every decision: effective protocols, bind addresses, endpoint health.

The dataclasses are frozen and hold tuples only, so a snapshot can be shared between streams
and compared cheaply. Fields without a natural default sit between defaulted ones in the
contract, hence ``kw_only``: build them with keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consulpy.connect import spiffe

DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"
HTTP_PROTOCOLS = ("http", "http2", "grpc")
PROTOCOLS = ("tcp", *HTTP_PROTOCOLS)


@dataclass(frozen=True)
class Endpoint:
    """One connect-capable instance of a target (a sidecar's public listener)."""

    address: str
    port: int
    healthy: bool = True
    weight: int = 1


@dataclass(frozen=True, kw_only=True)
class Target:
    """One upstream cluster: a (service, subset, datacenter) the discovery chain resolved to."""

    service: str
    subset: str = ""
    cluster_name: str
    sni: str
    spiffe_id: str
    endpoints: tuple[Endpoint, ...] = ()
    connect_timeout_s: float = 5.0
    # Non-empty for a resolver with failover: this target's cluster is an aggregate over
    # these cluster names (the primary first), each an EDS target of its own.
    aggregate: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Route:
    """A compiled service-router route (or a lone splitter: no match, ``splits`` set).

    Matching fields are ANDed; a route without any is the catch-all ``/``. ``headers`` and
    ``query_params`` use the service-router spelling: ``{"Name", "Present" | "Exact" |
    "Prefix" | "Suffix" | "Regex", "Invert"}``. Exactly one of ``splits`` (cluster name,
    weight in percent) and ``cluster`` is set.
    """

    path_exact: str = ""
    path_prefix: str = ""
    path_regex: str = ""
    methods: tuple[str, ...] = ()
    headers: tuple[dict[str, Any], ...] = ()
    query_params: tuple[dict[str, Any], ...] = ()
    splits: tuple[tuple[str, float], ...] = ()
    cluster: str = ""
    prefix_rewrite: str = ""
    timeout_s: float = 0.0
    num_retries: int = 0
    retry_on_connect_failure: bool = False
    retry_on_status_codes: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """One entry of the proxy's ``Upstreams``: a local listener and the clusters behind it.

    ``id`` is Consul's upstream ID (``api``, ``api?dc=dc2``); ``datacenter`` is the
    upstream's datacenter when it differs from the proxy's (used for stat prefixes).
    """

    id: str
    destination: str
    local_bind_address: str = "127.0.0.1"
    local_bind_port: int
    protocol: str = "tcp"
    targets: tuple[Target, ...]
    routes: tuple[Route, ...] = ()
    datacenter: str = ""


@dataclass(frozen=True, kw_only=True)
class ProxySnapshot:
    """Everything one sidecar needs, as of one moment.

    ``intentions`` are API-view dicts whose destination matches ``service`` (exact or ``*``),
    in evaluation order. ``sanitize_xfcc`` mirrors the mesh entry's
    ``HTTP.SanitizeXForwardedClientCert``; ``max_inbound_connections`` the service-defaults
    field of that name (0 = unlimited).
    """

    proxy_id: str
    service: str
    datacenter: str
    trust_domain: str
    public_address: str
    public_port: int
    local_address: str
    local_port: int
    protocol: str
    roots_pem: tuple[str, ...]
    leaf_cert_pem: str
    leaf_key_pem: str
    intentions: tuple[dict[str, Any], ...]
    default_allow: bool
    upstreams: tuple[Upstream, ...] = ()
    local_connect_timeout_s: float = 5.0
    local_request_timeout_s: float = 0.0
    sanitize_xfcc: bool = False
    max_inbound_connections: int = 0
    version: str = ""


def cluster_name(service: str, datacenter: str, trust_domain: str, subset: str = "") -> str:
    """``[<subset>.]<service>.default.<dc>.internal.<trust-domain>`` (Consul CE naming)."""
    prefix = f"{subset}." if subset else ""
    return f"{prefix}{service}.{DEFAULT_NAMESPACE}.{datacenter}.internal.{trust_domain}"


def spiffe_id(trust_domain: str, datacenter: str, service: str) -> str:
    """The URI SAN a certificate of ``service`` in ``datacenter`` carries."""
    return spiffe.service_uri(trust_domain, datacenter, service)


def default_target(
    service: str,
    datacenter: str,
    trust_domain: str,
    endpoints: tuple[Endpoint, ...] = (),
    *,
    connect_timeout_s: float = 5.0,
) -> Target:
    """The single target of a default discovery chain (no router, splitter or resolver)."""
    name = cluster_name(service, datacenter, trust_domain)
    return Target(
        service=service,
        cluster_name=name,
        sni=name,
        spiffe_id=spiffe_id(trust_domain, datacenter, service),
        endpoints=endpoints,
        connect_timeout_s=connect_timeout_s,
    )
