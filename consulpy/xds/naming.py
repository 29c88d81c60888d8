"""Resource names and stat prefixes (Consul's, so dashboards and tooling keep working)."""

from __future__ import annotations

from consulpy.agent.proxysnapshot import (
    DEFAULT_NAMESPACE,
    DEFAULT_PARTITION,
    ProxySnapshot,
    Upstream,
)

PUBLIC_LISTENER = "public_listener"
ANY_ADDRESS = "0.0.0.0"


def public_address(snapshot: ProxySnapshot) -> str:
    return snapshot.public_address or ANY_ADDRESS


def public_listener_name(snapshot: ProxySnapshot) -> str:
    """``public_listener:<addr>:<port>``."""
    return f"{PUBLIC_LISTENER}:{public_address(snapshot)}:{snapshot.public_port}"


def upstream_listener_name(upstream: Upstream) -> str:
    """``<upstreamID>:<bind addr>:<bind port>``, e.g. ``db:127.0.0.1:9191``."""
    return f"{upstream.id}:{upstream.local_bind_address}:{upstream.local_bind_port}"


def upstream_stat_prefix(snapshot: ProxySnapshot, upstream: Upstream) -> str:
    """``upstream.<svc>.<ns>.<partition>.<dc>``, e.g. ``upstream.db.default.default.dc1``."""
    dc = upstream.datacenter or snapshot.datacenter
    return f"upstream.{upstream.destination}.{DEFAULT_NAMESPACE}.{DEFAULT_PARTITION}.{dc}"
