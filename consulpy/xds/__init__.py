"""Envoy integration: xDS resources from proxy snapshots, the ADS gRPC server, bootstrap.

The agent gathers what a sidecar needs into an immutable ``ProxySnapshot`` and publishes it
through a ``ProxyLookup`` (``MemoryLookup`` is a ready one); ``XDSServer`` streams the
resulting clusters, endpoints, listeners and routes to each Envoy over ADS (Delta, and SotW
for older bootstraps). ``bootstrap_config`` writes the JSON Envoy starts from.

    lookup = MemoryLookup(authorizer)
    server = XDSServer(lookup)
    port = await server.start("127.0.0.1", 8502)
    lookup.publish(snapshot)           # on every change of the proxy's inputs

Import submodules as ``consulpy.xds.<name>``: the Envoy protobuf packages own the top-level
names ``envoy``, ``xds``, ``udpa``, ``validate`` and ``google``.
"""

from consulpy.xds.bootstrap import bootstrap_config, envoy_binary
from consulpy.xds.lookup import (
    AccessError,
    MemoryLookup,
    PermissionDenied,
    ProxyLookup,
    Unauthenticated,
    UnknownProxy,
)
from consulpy.xds.resources import Resources, build
from consulpy.xds.server import XDSServer
from consulpy.xds.snapshot import (
    Endpoint,
    ProxySnapshot,
    Route,
    Target,
    Upstream,
    cluster_name,
    default_target,
    spiffe_id,
)

__all__ = [
    "AccessError",
    "Endpoint",
    "MemoryLookup",
    "PermissionDenied",
    "ProxyLookup",
    "ProxySnapshot",
    "Resources",
    "Route",
    "Target",
    "Unauthenticated",
    "UnknownProxy",
    "Upstream",
    "XDSServer",
    "bootstrap_config",
    "build",
    "cluster_name",
    "default_target",
    "envoy_binary",
    "spiffe_id",
]
