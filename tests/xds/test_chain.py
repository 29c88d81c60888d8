"""Rendering a compiled chain (no Envoy): routes in the router's order with the flattened
splitter weights, one EDS cluster per reachable target, failover as an aggregate cluster."""

from __future__ import annotations

from consulpy.agent.proxycfg_chain import render_upstream
from consulpy.agent.proxysnapshot import Endpoint, Upstream
from consulpy.connect import config_entries as ce
from consulpy.xds.clusters import build_clusters
from consulpy.xds.endpoints import build_endpoints
from consulpy.xds.protoutil import to_dict
from consulpy.xds.routes import build_routes
from tests.connect.chain_scenario import ADMIN, BACKUP, CANARY, ENTRIES, V1, V2, sni
from tests.xds.mesh import Certs, sidecar_snapshot

TD = "td.consul"


def rendered(endpoints: dict[str, tuple[Endpoint, ...]] | None = None) -> Upstream:
    chain = ce.compile_chain(
        "api",
        ce.lookup_in([ce.normalize(e) for e in ENTRIES]),
        datacenter="dc1",
        trust_domain=TD,
    )
    return render_upstream(
        chain,
        upstream_id="api",
        local_bind_address="127.0.0.1",
        local_bind_port=9191,
        trust_domain=TD,
        endpoints=endpoints or {},
    )


def test_routes_follow_the_router_then_the_flattened_splitter() -> None:
    upstream = rendered()
    admin, catch_all = upstream.routes
    assert (admin.path_prefix, admin.cluster, admin.timeout_s) == ("/admin", sni(ADMIN, TD), 2.0)
    assert catch_all.path_prefix == "/"
    assert catch_all.splits == ((sni(V1, TD), 80.0), (sni(V2, TD), 10.0), (sni(CANARY, TD), 10.0))


def test_failover_is_an_aggregate_over_failover_target_clusters() -> None:
    v2_endpoint = Endpoint("127.0.0.9", 21000)
    upstream = rendered({V2: (v2_endpoint,), BACKUP: (Endpoint("127.0.0.8", 21001),)})
    by_name = {t.cluster_name: t for t in upstream.targets}
    members = (
        f"failover-target~0~{sni(V1, TD)}",
        f"failover-target~1~{sni(V2, TD)}",
        f"failover-target~2~{sni(BACKUP, TD)}",
    )
    assert by_name[sni(V1, TD)].aggregate == members
    assert sni(BACKUP, TD) not in by_name  # only a failover member, never routed to directly
    assert by_name[members[1]].endpoints == (v2_endpoint,)
    assert by_name[members[2]].sni == sni(BACKUP, TD)
    assert by_name[members[2]].spiffe_id.endswith("/ns/default/dc/dc1/svc/api-backup")

    certs = Certs()
    snap = sidecar_snapshot(certs, "web", public_port=21000, local_port=8080, upstreams=(upstream,))
    clusters = {c.name: to_dict(c) for c in build_clusters(snap)}
    aggregate = clusters[sni(V1, TD)]
    assert aggregate["lb_policy"] == "CLUSTER_PROVIDED"
    assert aggregate["cluster_type"]["name"] == "envoy.clusters.aggregate"
    assert aggregate["cluster_type"]["typed_config"]["clusters"] == list(members)
    assert "transport_socket" not in aggregate
    assert clusters[members[1]]["type"] == "EDS"
    assignments = {e.cluster_name for e in build_endpoints(snap)}
    assert sni(V1, TD) not in assignments and set(members) <= assignments
    [route_config] = build_routes(snap)
    assert route_config.name == "api"
