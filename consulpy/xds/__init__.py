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

import importlib
from typing import Any

# Resolved on first use, so that importing one submodule (the agent's proxy config needs only
# ``consulpy.agent.proxylookup``) does not load gRPC and every Envoy protobuf module.
_EXPORTS = {
    "bootstrap_config": "bootstrap",
    "envoy_binary": "bootstrap",
    "AccessError": "lookup",
    "MemoryLookup": "lookup",
    "PermissionDenied": "lookup",
    "ProxyLookup": "lookup",
    "Unauthenticated": "lookup",
    "UnknownProxy": "lookup",
    "Resources": "resources",
    "build": "resources",
    "XDSServer": "server",
    "Endpoint": "snapshot",
    "ProxySnapshot": "snapshot",
    "Route": "snapshot",
    "Target": "snapshot",
    "Upstream": "snapshot",
    "cluster_name": "snapshot",
    "default_target": "snapshot",
    "spiffe_id": "snapshot",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
