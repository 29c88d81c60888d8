"""Deterministic snapshots for builder tests and golden files.

Certificates are placeholder strings: the builders only inline them, and golden files must
not change with every run. Tests that hand resources to a real Envoy use real certificates
(tests/xds/mesh.py).
"""

from __future__ import annotations

from dataclasses import replace

from consulpy.agent.proxysnapshot import (
    Endpoint,
    ProxySnapshot,
    Route,
    Target,
    Upstream,
    cluster_name,
    default_target,
    spiffe_id,
)

TD = "11111111-2222-3333-4444-555555555555.consul"
DC = "dc1"
ROOT_A = "-----BEGIN CERTIFICATE-----\nROOT-A\n-----END CERTIFICATE-----\n"
ROOT_B = "-----BEGIN CERTIFICATE-----\nROOT-B\n-----END CERTIFICATE-----"
LEAF = "-----BEGIN CERTIFICATE-----\nLEAF-WEB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN EC PRIVATE KEY-----\nKEY-WEB\n-----END EC PRIVATE KEY-----\n"


def intention(source: str, action: str | None = None, *, dest: str = "web", **extra) -> dict:
    exact_src, exact_dst = source != "*", dest != "*"
    precedence = (9 if exact_dst else 6) - (0 if exact_src else 1)
    out = {
        "SourceNS": "default",
        "SourceName": source,
        "DestinationNS": "default",
        "DestinationName": dest,
        "SourceType": "consul",
        "Precedence": precedence,
    }
    if action is not None:
        out["Action"] = action
    out.update(extra)
    return out


def base(**changes) -> ProxySnapshot:
    snap = ProxySnapshot(
        proxy_id="web-sidecar-proxy",
        service="web",
        datacenter=DC,
        trust_domain=TD,
        public_address="",
        public_port=21000,
        local_address="127.0.0.1",
        local_port=8080,
        protocol="tcp",
        roots_pem=(ROOT_A, ROOT_B),
        leaf_cert_pem=LEAF,
        leaf_key_pem=KEY,
        intentions=(),
        default_allow=True,
        version="1",
    )
    return replace(snap, **changes)


def api_upstream(protocol: str = "tcp", endpoints: tuple[Endpoint, ...] | None = None) -> Upstream:
    if endpoints is None:
        endpoints = (
            Endpoint("10.0.0.1", 21000),
            Endpoint("10.0.0.2", 21000, healthy=False),
            Endpoint("10.0.0.3", 21000, weight=300),
            Endpoint("10.0.0.4", 21000, weight=0),
        )
    return Upstream(
        id="api",
        destination="api",
        local_bind_port=9191,
        protocol=protocol,
        targets=(default_target("api", DC, TD, endpoints),),
    )


def tcp_default_allow() -> ProxySnapshot:
    """tcp, default allow, one deny intention, one upstream in another datacenter too."""
    dc2 = Upstream(
        id="db?dc=dc2",
        destination="db",
        local_bind_port=9192,
        datacenter="dc2",
        targets=(default_target("db", "dc2", TD, (Endpoint("10.1.0.1", 21000),)),),
    )
    return base(
        intentions=(intention("db", "deny"), intention("*", "allow", dest="*")),
        upstreams=(api_upstream(), dc2),
        max_inbound_connections=100,
    )


def http_default_deny_l7() -> ProxySnapshot:
    """http, default deny: wildcard allow minus an exact deny, an L7 intention."""
    return base(
        protocol="http",
        public_address="10.0.0.9",
        intentions=(
            intention("*", "allow"),
            intention("api", "deny"),
            intention(
                "admin",
                Permissions=[
                    {"Action": "deny", "HTTP": {"PathExact": "/admin"}},
                    {
                        "Action": "allow",
                        "HTTP": {
                            "PathPrefix": "/v1",
                            "Methods": ["GET", "HEAD"],
                            "Header": [{"Name": "x-debug", "Present": True, "Invert": True}],
                        },
                    },
                ],
            ),
        ),
        default_allow=False,
        local_request_timeout_s=2.5,
        upstreams=(api_upstream("http"),),
    )


def http_routes() -> ProxySnapshot:
    """An http upstream whose chain has a router and a splitter (served over RDS)."""
    v1 = cluster_name("api", DC, TD, subset="v1")
    v2 = cluster_name("api", DC, TD, subset="v2")
    main = cluster_name("api", DC, TD)
    targets = (
        Target(
            service="api",
            cluster_name=main,
            sni=main,
            spiffe_id=spiffe_id(TD, DC, "api"),
            endpoints=(Endpoint("10.0.0.1", 21000),),
        ),
        Target(
            service="api",
            subset="v1",
            cluster_name=v1,
            sni=v1,
            spiffe_id=spiffe_id(TD, DC, "api"),
            endpoints=(Endpoint("10.0.0.5", 21000),),
            connect_timeout_s=0.25,
        ),
        Target(
            service="api",
            subset="v2",
            cluster_name=v2,
            sni=v2,
            spiffe_id=spiffe_id(TD, DC, "api"),
            endpoints=(),
        ),
    )
    routes = (
        Route(
            path_prefix="/admin",
            headers=({"Name": "x-user", "Exact": "root"},),
            methods=("POST",),
            cluster=v2,
            prefix_rewrite="/",
            timeout_s=10,
            num_retries=3,
            retry_on_connect_failure=True,
            retry_on_status_codes=(503,),
        ),
        Route(
            path_regex="/v[0-9]+/.*", query_params=({"Name": "debug", "Present": True},), cluster=v1
        ),
        Route(splits=((v1, 95.5), (v2, 4.5))),
    )
    up = Upstream(
        id="api",
        destination="api",
        local_bind_port=9191,
        protocol="http",
        targets=targets,
        routes=routes,
    )
    return base(protocol="http", upstreams=(up,))


def grpc_service() -> ProxySnapshot:
    """grpc on both sides: HTTP/2 everywhere, gRPC filters, XFCC sanitized."""
    return base(
        protocol="grpc",
        sanitize_xfcc=True,
        upstreams=(api_upstream("grpc"),),
        intentions=(intention("api", "deny"),),
    )


GOLDEN = {
    "tcp_default_allow": tcp_default_allow,
    "http_default_deny_l7": http_default_deny_l7,
    "http_routes": http_routes,
    "grpc_service": grpc_service,
}
