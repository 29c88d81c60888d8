"""Envoy resources for one proxy snapshot, keyed by type URL and name, each with a version.

``build(snapshot)`` is a pure function: the same snapshot always gives byte-identical
resources and versions, so the ADS server can diff two snapshots per resource and push only
what changed. A version is a hash of the resource's deterministic serialization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from consulpy.agent.proxysnapshot import PROTOCOLS, ProxySnapshot
from consulpy.xds.clusters import build_clusters
from consulpy.xds.endpoints import build_endpoints
from consulpy.xds.listeners import build_listeners
from consulpy.xds.naming import upstream_listener_name
from consulpy.xds.protoutil import TYPE_PREFIX
from consulpy.xds.routes import build_routes, uses_rds

CLUSTER = TYPE_PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = TYPE_PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = TYPE_PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration"
TYPE_URLS = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
SHORT_NAMES = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS"}
# Which type holds the resources a resource of the key type depends on: a replaced EDS
# cluster needs its ClusterLoadAssignment again, a replaced listener its RouteConfiguration.
CHILD_TYPE = {CLUSTER: ENDPOINT, LISTENER: ROUTE}


def short(type_url: str) -> str:
    """``CDS``/``EDS``/``LDS``/``RDS`` for logs; other type URLs as they are."""
    return SHORT_NAMES.get(type_url, type_url)


def version_of(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:32]


@dataclass(frozen=True)
class Resource:
    """One named resource, packed once and shared by every stream that sends it."""

    name: str
    version: str
    message: Message
    packed: any_pb2.Any
    children: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, message: Message, children: Iterable[str] = ()) -> Resource:
        packed = any_pb2.Any()
        packed.Pack(message)
        return cls(name, version_of(message), message, packed, tuple(children))


@dataclass(frozen=True)
class Resources:
    """``by_type[type_url][name] -> Resource`` plus the snapshot version it came from."""

    by_type: Mapping[str, Mapping[str, Resource]]
    version: str = ""
    _empty: Mapping[str, Resource] = field(default_factory=dict, repr=False)

    def of_type(self, type_url: str) -> Mapping[str, Resource]:
        return self.by_type.get(type_url, self._empty)

    def __iter__(self) -> Iterator[tuple[str, Resource]]:
        for type_url in TYPE_URLS:
            for res in self.of_type(type_url).values():
                yield type_url, res


def check(snapshot: ProxySnapshot) -> None:
    """Refuse a snapshot Envoy could only reject: missing certificates, unknown protocols."""
    if not snapshot.roots_pem or not snapshot.leaf_cert_pem or not snapshot.leaf_key_pem:
        raise ValueError(f"snapshot of {snapshot.proxy_id!r} lacks CA roots or its leaf")
    for what, protocol in [("service", snapshot.protocol)] + [
        (f"upstream {u.id!r}", u.protocol) for u in snapshot.upstreams
    ]:
        if protocol not in PROTOCOLS:
            raise ValueError(f"{what} has unknown protocol {protocol!r}")


def build(snapshot: ProxySnapshot) -> Resources:
    """Every cluster, endpoint assignment, listener and route configuration of ``snapshot``.

    Raises ValueError for a snapshot that cannot be expressed (no leaf or roots, an unknown
    protocol, an upstream without targets). Gateways carry snapshots of their own kind,
    built by their own module.
    """
    gateway = _gateway_builder(snapshot)
    if gateway is not None:
        return _from_parts(gateway(snapshot), snapshot.version)
    check(snapshot)
    clusters = {
        c.name: Resource.of(c.name, c, [c.name] if c.HasField("eds_cluster_config") else [])
        for c in build_clusters(snapshot)
    }
    endpoints = {e.cluster_name: Resource.of(e.cluster_name, e) for e in build_endpoints(snapshot)}
    rds_children = {upstream_listener_name(u): [u.id] for u in snapshot.upstreams if uses_rds(u)}
    listeners = {
        lst.name: Resource.of(lst.name, lst, rds_children.get(lst.name, ()))
        for lst in build_listeners(snapshot)
    }
    routes = {r.name: Resource.of(r.name, r) for r in build_routes(snapshot)}
    return Resources(
        {CLUSTER: clusters, ENDPOINT: endpoints, LISTENER: listeners, ROUTE: routes},
        version=snapshot.version,
    )


def _gateway_builder(
    snapshot: object,
) -> Callable[[Any], dict[str, list[tuple[Any, list[str]]]]] | None:
    from consulpy.xds import gateway_ingress, gateway_mesh, gateway_terminating

    if isinstance(snapshot, gateway_mesh.MeshGatewaySnapshot):
        return gateway_mesh.build_resources
    if isinstance(snapshot, gateway_ingress.IngressSnapshot):
        return gateway_ingress.build_resources
    if isinstance(snapshot, gateway_terminating.TerminatingSnapshot):
        return gateway_terminating.build_resources
    return None


def _from_parts(parts: Mapping[str, list[tuple[Any, list[str]]]], version: str) -> Resources:
    """Resources from a gateway builder's ``{kind: [(message, children)]}``."""
    by_type: dict[str, dict[str, Resource]] = {}
    for type_url, key, attr in (
        (CLUSTER, "clusters", "name"),
        (ENDPOINT, "endpoints", "cluster_name"),
        (LISTENER, "listeners", "name"),
        (ROUTE, "routes", "name"),
    ):
        by_type[type_url] = {
            getattr(m, attr): Resource.of(getattr(m, attr), m, children)
            for m, children in parts.get(key, [])
        }
    return Resources(by_type, version=version)
