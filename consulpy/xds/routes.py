"""RDS: route configurations for http-like upstreams with a custom discovery chain, and the
route entries the inline (default chain) configurations share."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_pb2

from consulpy.agent.proxysnapshot import ProxySnapshot, Route, Upstream
from consulpy.xds.matchers import header_matcher, methods_matcher, query_matcher
from consulpy.xds.protoutil import duration, to_message


def route_match(route: Route) -> dict[str, Any]:
    """Path (exact, prefix or regex; ``/`` prefix when none), headers, methods, query."""
    match: dict[str, Any]
    if route.path_exact:
        match = {"path": route.path_exact}
    elif route.path_regex:
        match = {"safe_regex": {"regex": route.path_regex}}
    else:
        match = {"prefix": route.path_prefix or "/"}
    headers = [m for m in (header_matcher(h) for h in route.headers) if m is not None]
    if route.methods:
        headers.append(methods_matcher(route.methods))
    if headers:
        match["headers"] = headers
    query = [m for m in (query_matcher(q) for q in route.query_params) if m is not None]
    if query:
        match["query_parameters"] = query
    return match


def split_weight(percent: float) -> int:
    """Splitter weights are percentages with two decimals; Envoy gets them times 100
    (so a full split sums to 10000)."""
    return round(percent * 100)


def route_action(route: Route) -> dict[str, Any]:
    action: dict[str, Any]
    if route.splits:
        clusters = [
            {"name": name, "weight": split_weight(pct)}
            for name, pct in route.splits
            if split_weight(pct) > 0
        ]
        action = {"weighted_clusters": {"clusters": clusters}}
    else:
        action = {"cluster": route.cluster}
    if route.prefix_rewrite:
        action["prefix_rewrite"] = route.prefix_rewrite
    if route.timeout_s > 0:
        action["timeout"] = duration(route.timeout_s)
    retry_on = []
    if route.retry_on_connect_failure:
        retry_on.append("connect-failure")
    if route.retry_on_status_codes:
        retry_on.append("retriable-status-codes")
    if route.num_retries or retry_on:
        policy: dict[str, Any] = {}
        if retry_on:
            policy["retry_on"] = ",".join(retry_on)
        if route.num_retries:
            policy["num_retries"] = route.num_retries
        if route.retry_on_status_codes:
            policy["retriable_status_codes"] = list(route.retry_on_status_codes)
        action["retry_policy"] = policy
    return action


def envoy_route(route: Route) -> dict[str, Any]:
    return {"match": route_match(route), "route": route_action(route)}


def virtual_host(name: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "domains": ["*"], "routes": routes}


def route_configuration(upstream: Upstream) -> route_pb2.RouteConfiguration:
    """``RouteConfiguration`` named after the upstream ID, one catch-all virtual host."""
    data = {
        "name": upstream.id,
        "virtual_hosts": [virtual_host(upstream.id, [envoy_route(r) for r in upstream.routes])],
    }
    return to_message(data, route_pb2.RouteConfiguration())


def uses_rds(upstream: Upstream) -> bool:
    """An http-like upstream with a router/splitter chain is served over RDS; a default
    chain gets an inline route (http) or a tcp_proxy (tcp) instead."""
    return bool(upstream.routes) and upstream.protocol != "tcp"


def build_routes(snapshot: ProxySnapshot) -> list[route_pb2.RouteConfiguration]:
    return [route_configuration(u) for u in snapshot.upstreams if uses_rds(u)]
