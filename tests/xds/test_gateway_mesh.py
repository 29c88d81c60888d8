"""The mesh gateway's Envoy resources: SNI routing without TLS termination."""

from __future__ import annotations

from consulpy.agent import gatewaysnapshot as gs
from consulpy.agent.proxysnapshot import Endpoint
from consulpy.xds import gateway_mesh as gm
from consulpy.xds.protoutil import to_dict
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER, build

TD = "11111111-2222-3333-4444-555555555555.consul"


def snapshot() -> gs.MeshGatewaySnapshot:
    return gs.MeshGatewaySnapshot(
        proxy_id="mesh-gateway",
        service="mesh-gateway",
        datacenter="dc1",
        trust_domain=TD,
        address="10.0.0.5",
        port=8443,
        services=(
            gs.GatewayService(
                name="api",
                sni=gs.service_sni("api", "dc1", TD),
                endpoints=(Endpoint("10.0.0.9", 21000), Endpoint("10.0.0.8", 21000, False)),
            ),
        ),
        remotes=(
            gs.RemoteDatacenter(
                name="dc2",
                cluster_name=gs.datacenter_cluster("dc2", TD),
                endpoints=(Endpoint("203.0.113.4", 443),),
            ),
        ),
    )


def test_listener_routes_by_sni_and_keeps_tls() -> None:
    res = build(snapshot())
    (listener,) = res.of_type(LISTENER).values()
    data = to_dict(listener.message)
    assert data["name"] == "default:10.0.0.5:8443"
    assert [f["name"] for f in data["listener_filters"]] == [gm.TLS_INSPECTOR]
    *chains, catch_all = data["filter_chains"]
    assert [c["filter_chain_match"]["server_names"] for c in chains] == [
        [f"api.default.dc1.internal.{TD}"],
        [f"*.dc2.internal.{TD}"],
    ]
    assert [c["filters"][0]["typed_config"]["cluster"] for c in chains] == [
        f"api.default.dc1.internal.{TD}",
        f"dc2.internal.{TD}",
    ]
    # any other SNI: the cluster of that name (sni_cluster), matched last
    assert "filter_chain_match" not in catch_all
    assert [f["name"] for f in catch_all["filters"]] == [
        gm.SNI_CLUSTER,
        "envoy.filters.network.tcp_proxy",
    ]
    assert all("transport_socket" not in c for c in data["filter_chains"])  # mTLS passes


def test_clusters_are_plain_tcp_with_endpoints() -> None:
    res = build(snapshot())
    clusters = res.of_type(CLUSTER)
    assert sorted(clusters) == [f"api.default.dc1.internal.{TD}", f"dc2.internal.{TD}"]
    assert all(not c.message.HasField("transport_socket") for c in clusters.values())
    api = to_dict(res.of_type(ENDPOINT)[f"api.default.dc1.internal.{TD}"].message)
    hosts = [
        (e["endpoint"]["address"]["socket_address"]["address"], e["health_status"])
        for e in api["endpoints"][0]["lb_endpoints"]
    ]
    assert hosts == [("10.0.0.9", "HEALTHY"), ("10.0.0.8", "UNHEALTHY")]
    remote = to_dict(res.of_type(ENDPOINT)[f"dc2.internal.{TD}"].message)
    assert remote["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "203.0.113.4", "port_value": 443}
    }


def test_gateway_address_prefers_tagged_addresses() -> None:
    from consulpy.agent.proxycfg_mesh_gateway import gateway_address

    entry = {
        "Node": {"Address": "10.0.0.1", "TaggedAddresses": {"wan": "198.51.100.1"}},
        "Service": {
            "Address": "10.0.0.2",
            "Port": 8443,
            "TaggedAddresses": {"wan": {"Address": "203.0.113.9", "Port": 443}},
        },
    }
    assert gateway_address(entry, wan=True) == ("203.0.113.9", 443)
    assert gateway_address(entry, wan=False) == ("10.0.0.2", 8443)
    bare = {"Node": entry["Node"], "Service": {"Port": 8443}}
    assert gateway_address(bare, wan=True) == ("198.51.100.1", 8443)
    assert gateway_address(bare, wan=False) == ("10.0.0.1", 8443)


def test_mesh_gateway_mode_precedence() -> None:
    """The upstream's MeshGateway, else the proxy's, else service-defaults, else
    proxy-defaults."""
    from consulpy.agent.proxycfg import compile_upstream
    from consulpy.connect import config_entries as ce

    entries = [
        {"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "remote"}},
        {"Kind": "service-defaults", "Name": "api", "MeshGateway": {"Mode": "local"}},
    ]
    lookup = ce.lookup_in(entries)

    def mode(upstream: dict, proxy_mode: str = "") -> str:
        chain = compile_upstream(upstream, lookup, "dc1", TD, proxy_mode)
        return chain.targets[next(iter(chain.targets))].mesh_gateway_mode

    up = {"DestinationName": "api", "Datacenter": "dc2"}
    assert mode(up) == "local"
    assert mode({"DestinationName": "db", "Datacenter": "dc2"}) == "remote"
    assert mode(up, "none") == "none"
    assert mode({**up, "MeshGateway": {"Mode": "remote"}}, "none") == "remote"


def test_registration_refuses_unknown_mesh_gateway_modes() -> None:
    import pytest

    from consulpy.agent.definitions import DefinitionError, service_from_definition

    proxy = {
        "Kind": "connect-proxy",
        "Name": "web-proxy",
        "Port": 21000,
        "Proxy": {
            "DestinationServiceName": "web",
            "MeshGateway": {"Mode": "local"},
            "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}],
        },
    }
    assert service_from_definition(proxy)["Proxy"]["MeshGateway"] == {"Mode": "local"}
    bad_proxy = {**proxy, "Proxy": {**proxy["Proxy"], "MeshGateway": {"Mode": "nearest"}}}
    with pytest.raises(DefinitionError, match=r'Proxy\.MeshGateway\.Mode: invalid mode "nearest"'):
        service_from_definition(bad_proxy)
    upstream = {"DestinationName": "api", "LocalBindPort": 9191, "MeshGateway": {"Mode": "x"}}
    bad_upstream = {**proxy, "Proxy": {**proxy["Proxy"], "Upstreams": [upstream]}}
    with pytest.raises(DefinitionError, match=r"Upstreams\[0\]\.MeshGateway\.Mode"):
        service_from_definition(bad_upstream)
