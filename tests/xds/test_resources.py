"""Resource builders: golden JSON for a few snapshots, and the rules behind them.

Regenerate the golden files after an intended change with ``XDS_UPDATE_GOLDEN=1``, then read
the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from consulpy.agent.proxysnapshot import Endpoint, Upstream, cluster_name, spiffe_id
from consulpy.xds.protoutil import duration, to_dict
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, TYPE_URLS, build
from tests.xds import samples

GOLDEN_DIR = Path(__file__).parent / "golden"


def rendered(snapshot) -> dict:
    res = build(snapshot)
    return {
        t.rsplit(".", 1)[-1]: {
            name: to_dict(r.message) for name, r in sorted(res.of_type(t).items())
        }
        for t in TYPE_URLS
    }


@pytest.mark.parametrize("name", sorted(samples.GOLDEN))
def test_golden(name: str) -> None:
    got = rendered(samples.GOLDEN[name]())
    path = GOLDEN_DIR / f"{name}.json"
    text = json.dumps(got, indent=2, sort_keys=True) + "\n"
    if os.environ.get("XDS_UPDATE_GOLDEN"):
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(text)
    assert json.loads(path.read_text()) == got, f"{path.name} differs (XDS_UPDATE_GOLDEN=1)"


def test_names_and_stat_prefixes() -> None:
    res = build(samples.tcp_default_allow())
    assert sorted(res.of_type(LISTENER)) == [
        "api:127.0.0.1:9191",
        "db?dc=dc2:127.0.0.1:9192",
        "public_listener:0.0.0.0:21000",
    ]
    api = f"api.default.dc1.internal.{samples.TD}"
    db = f"db.default.dc2.internal.{samples.TD}"
    assert sorted(res.of_type(CLUSTER)) == sorted(["local_app", api, db])
    assert sorted(res.of_type(ENDPOINT)) == sorted([api, db])
    assert res.of_type(ROUTE) == {}

    lst = to_dict(res.of_type(LISTENER)["db?dc=dc2:127.0.0.1:9192"].message)
    proxy = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert proxy["stat_prefix"] == "upstream.db.default.default.dc2"
    assert proxy["cluster"] == db
    public = to_dict(res.of_type(LISTENER)["public_listener:0.0.0.0:21000"].message)
    filters = [f["name"] for f in public["filter_chains"][0]["filters"]]
    assert filters == [
        "envoy.filters.network.connection_limit",
        "envoy.filters.network.rbac",
        "envoy.filters.network.tcp_proxy",
    ]
    assert public["traffic_direction"] == "INBOUND"
    assert public["filter_chains"][0]["filters"][1]["typed_config"]["stat_prefix"] == (
        "connect_authz"
    )


def test_cluster_helpers() -> None:
    assert cluster_name("api", "dc1", "td.consul") == "api.default.dc1.internal.td.consul"
    assert cluster_name("api", "dc1", "td.consul", "v2") == "v2.api.default.dc1.internal.td.consul"
    assert spiffe_id("td.consul", "dc1", "api") == "spiffe://td.consul/ns/default/dc/dc1/svc/api"


def test_upstream_cluster_pins_target_identity() -> None:
    res = build(samples.http_default_deny_l7())
    name = f"api.default.dc1.internal.{samples.TD}"
    cluster = to_dict(res.of_type(CLUSTER)[name].message)
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == name
    validation = tls["common_tls_context"]["validation_context"]
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"exact": spiffe_id(samples.TD, "dc1", "api")}}
    ]
    # Every root, each ending in a newline, in one bundle.
    assert validation["trusted_ca"]["inline_string"] == samples.ROOT_A + samples.ROOT_B + "\n"
    assert tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"] == {
        "inline_string": samples.LEAF
    }
    assert cluster["type"] == "EDS"
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {}}


def test_endpoint_health_and_weights() -> None:
    res = build(samples.tcp_default_allow())
    cla = to_dict(res.of_type(ENDPOINT)[f"api.default.dc1.internal.{samples.TD}"].message)
    got = [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["health_status"],
            e["load_balancing_weight"],
        )
        for e in cla["endpoints"][0]["lb_endpoints"]
    ]
    assert got == [
        ("10.0.0.1", "HEALTHY", 1),
        ("10.0.0.2", "UNHEALTHY", 1),
        ("10.0.0.3", "HEALTHY", 128),  # clamped
        ("10.0.0.4", "UNHEALTHY", 1),  # weight 0 = take no traffic
    ]


def test_empty_target_has_empty_assignment() -> None:
    res = build(samples.http_routes())
    cla = res.of_type(ENDPOINT)[f"v2.api.default.dc1.internal.{samples.TD}"].message
    assert len(cla.endpoints) == 0


def test_routes_over_rds_only_for_custom_http_chains() -> None:
    res = build(samples.http_routes())
    assert list(res.of_type(ROUTE)) == ["api"]
    lst = to_dict(res.of_type(LISTENER)["api:127.0.0.1:9191"].message)
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"] == {
        "config_source": {"ads": {}, "resource_api_version": "V3"},
        "route_config_name": "api",
    }
    assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.router"]
    assert res.of_type(LISTENER)["api:127.0.0.1:9191"].children == ("api",)

    routes = to_dict(res.of_type(ROUTE)["api"].message)["virtual_hosts"][0]["routes"]
    assert routes[-1]["match"] == {"prefix": "/"}
    assert routes[-1]["route"]["weighted_clusters"]["clusters"] == [
        {"name": cluster_name("api", "dc1", samples.TD, "v1"), "weight": 9550},
        {"name": cluster_name("api", "dc1", samples.TD, "v2"), "weight": 450},
    ]
    # A tcp upstream with routes (not possible through validation) still gets tcp_proxy.
    tcp = replace(samples.http_routes().upstreams[0], protocol="tcp")
    res = build(samples.base(upstreams=(tcp,)))
    assert res.of_type(ROUTE) == {}


def test_versions_change_only_with_content() -> None:
    one, two = build(samples.tcp_default_allow()), build(samples.tcp_default_allow())
    assert [(t, r.name, r.version) for t, r in one] == [(t, r.name, r.version) for t, r in two]

    snap = samples.tcp_default_allow()
    more = replace(
        snap,
        upstreams=(
            samples.api_upstream(endpoints=(Endpoint("10.0.0.7", 21000),)),
            *snap.upstreams[1:],
        ),
    )
    three = build(more)
    changed = {
        (t, name)
        for t in TYPE_URLS
        for name, r in three.of_type(t).items()
        if one.of_type(t)[name].version != r.version
    }
    assert changed == {(ENDPOINT, f"api.default.dc1.internal.{samples.TD}")}


def test_upstream_without_targets_is_refused() -> None:
    bad = Upstream(id="x", destination="x", local_bind_port=1, targets=())
    with pytest.raises(ValueError, match="neither targets nor routes"):
        build(samples.base(upstreams=(bad,)))


def test_incomplete_snapshots_are_refused() -> None:
    with pytest.raises(ValueError, match="lacks CA roots or its leaf"):
        build(samples.base(roots_pem=()))
    with pytest.raises(ValueError, match="lacks CA roots or its leaf"):
        build(samples.base(leaf_key_pem=""))
    with pytest.raises(ValueError, match="unknown protocol 'udp'"):
        build(samples.base(protocol="udp"))
    with pytest.raises(ValueError, match="upstream 'api' has unknown protocol"):
        build(samples.base(upstreams=(samples.api_upstream("h3"),)))


def test_duration_format() -> None:
    assert duration(5) == "5s"
    assert duration(0.25) == "0.25s"
    assert duration(1.000000001) == "1.000000001s"
    with pytest.raises(ValueError):
        duration(-1)
