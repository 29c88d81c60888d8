"""Render a compiled discovery chain (`consulpy.connect.config_entries.chain`) as the routes
and targets of one upstream. The compiling happens in `connect/`; this module only maps
nodes to Envoy concepts: a router's routes become RDS routes, a splitter becomes
weighted_clusters, every retained chain target becomes one EDS cluster named by the target's
`Name` (its SNI), as Consul names them. A resolver with failover becomes an aggregate cluster
of that name over `failover-target~<i>~<name>` EDS clusters (the primary first), as Consul's
are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from consulpy.agent.proxysnapshot import (
    HTTP_PROTOCOLS,
    Endpoint,
    Route,
    Target,
    Upstream,
    spiffe_id,
)
from consulpy.connect.config_entries.chain import ROUTER, SPLITTER, CompiledChain
from consulpy.util.durations import DurationError, duration_from_json

# Consul's names for the members of a failover aggregate: failover-target~<i>~<target name>.
FAILOVER_PREFIX = "failover-target~"


def _seconds(value: Any) -> float:
    if not value:
        return 0.0
    try:
        return duration_from_json(value) / 1e9
    except (DurationError, ValueError):
        return 0.0


def _route(
    chain: CompiledChain, names: Mapping[str, str], match: Any, dest: Any, nxt: str
) -> Route:
    http = (match or {}).get("HTTP") or {}
    dest = dest or {}
    weights = [(names[tid], weight) for tid, weight in chain.resolver_targets(nxt)]
    single = chain.nodes[nxt].type != SPLITTER
    return Route(
        path_exact=http.get("PathExact") or "",
        path_prefix=http.get("PathPrefix") or "",
        path_regex=http.get("PathRegex") or "",
        methods=tuple(http.get("Methods") or ()),
        headers=tuple(http.get("Header") or ()),
        query_params=tuple(http.get("QueryParam") or ()),
        splits=() if single else tuple(weights),
        cluster=weights[0][0] if single else "",
        prefix_rewrite=dest.get("PrefixRewrite") or "",
        timeout_s=_seconds(dest.get("RequestTimeout")),
        num_retries=int(dest.get("NumRetries") or 0),
        retry_on_connect_failure=bool(dest.get("RetryOnConnectFailure")),
        retry_on_status_codes=tuple(int(c) for c in dest.get("RetryOnStatusCodes") or ()),
    )


def render_upstream(
    chain: CompiledChain,
    *,
    upstream_id: str,
    local_bind_address: str,
    local_bind_port: int,
    trust_domain: str,
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    datacenter: str = "",
) -> Upstream:
    """The upstream listener's routes and clusters for `chain`; `endpoints` maps a chain
    target ID to its instances (already filtered by the target's subset)."""
    start = chain.nodes[chain.start_node]
    first = chain.resolver_targets(chain.start_node)[0][0] if start.type != ROUTER else ""
    resolvers = [n.resolver for n in chain.nodes.values() if n.resolver is not None]
    resolvers.sort(key=lambda r: (r.target != first, r.target))
    targets: list[Target] = []
    names: dict[str, str] = {}

    def target(tid: str, cluster_name: str) -> Target:
        t = chain.targets[tid]
        return Target(
            service=t.service,
            subset=t.subset,
            cluster_name=cluster_name,
            sni=t.sni,
            spiffe_id=spiffe_id(trust_domain, t.datacenter, t.service),
            endpoints=tuple(endpoints.get(tid, ())),
            connect_timeout_s=t.connect_timeout_ns / 1e9,
        )

    for resolver in resolvers:
        primary = chain.targets[resolver.target]
        names[resolver.target] = primary.name
        if not resolver.failover:
            targets.append(target(resolver.target, primary.name))
            continue
        members = [
            target(tid, f"{FAILOVER_PREFIX}{i}~{chain.targets[tid].name}")
            for i, tid in enumerate([resolver.target, *resolver.failover])
        ]
        aggregate = replace(
            members[0],
            cluster_name=primary.name,
            endpoints=(),
            aggregate=tuple(m.cluster_name for m in members),
        )
        targets += [aggregate, *members]
    routes: list[Route] = []
    if chain.protocol in HTTP_PROTOCOLS:
        if start.type == ROUTER:
            for r in start.routes:
                d = r.definition
                routes.append(
                    _route(chain, names, d.get("Match"), d.get("Destination"), r.next_node)
                )
        elif start.type == SPLITTER:
            routes.append(_route(chain, names, None, None, chain.start_node))
    return Upstream(
        id=upstream_id,
        destination=chain.service_name,
        local_bind_address=local_bind_address,
        local_bind_port=local_bind_port,
        protocol=chain.protocol,
        targets=tuple(targets),
        routes=tuple(routes),
        datacenter=datacenter,
    )
