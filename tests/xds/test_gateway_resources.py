"""Ingress and terminating gateway resources: the rules behind what their Envoys receive
(real Envoys run them in tests/mesh/test_gateways.py)."""

from __future__ import annotations

from dataclasses import replace

from consulpy.agent.gatewaysnapshot import (
    IngressListener,
    IngressService,
    IngressSnapshot,
    IngressTLS,
    LinkedService,
    TerminatingSnapshot,
)
from consulpy.agent.proxysnapshot import Endpoint, cluster_name
from consulpy.xds.protoutil import to_dict
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, build
from tests.xds import samples
from tests.xds.samples import DC, KEY, LEAF, ROOT_A, TD


def _ingress() -> IngressSnapshot:
    web = samples.api_upstream("http")
    return IngressSnapshot(
        proxy_id="ingress",
        service="ingress",
        datacenter=DC,
        trust_domain=TD,
        address="10.1.1.1",
        roots_pem=(ROOT_A,),
        leaf_cert_pem=LEAF,
        leaf_key_pem=KEY,
        listeners=(
            IngressListener(
                port=8080,
                protocol="http",
                services=(
                    IngressService(name="api", upstream=web),
                    IngressService(name="shop", hosts=("shop.example.com",), upstream=web),
                ),
            ),
            IngressListener(
                port=9000,
                protocol="tcp",
                services=(IngressService(name="api", upstream=samples.api_upstream()),),
            ),
        ),
        version="3",
    )


def test_ingress_listeners_route_by_host_and_proxy_tcp() -> None:
    res = build(_ingress())
    assert res.version == "3"
    assert sorted(res.of_type(LISTENER)) == ["http:10.1.1.1:8080", "tcp:10.1.1.1:9000"]
    http = to_dict(res.of_type(LISTENER)["http:10.1.1.1:8080"].message)
    hcm = http["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"]["route_config_name"] == "8080"
    assert res.of_type(LISTENER)["http:10.1.1.1:8080"].children == ("8080",)
    route = to_dict(res.of_type(ROUTE)["8080"].message)
    domains = {vh["name"]: vh["domains"] for vh in route["virtual_hosts"]}
    assert domains == {
        "api": ["api.ingress.*", "api.ingress.*:8080"],
        "shop": ["shop.example.com"],
    }
    api_cluster = cluster_name("api", DC, TD)
    assert route["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == api_cluster
    tcp = to_dict(res.of_type(LISTENER)["tcp:10.1.1.1:9000"].message)
    proxy = tcp["filter_chains"][0]["filters"][0]["typed_config"]
    assert proxy["cluster"] == api_cluster
    assert proxy["stat_prefix"] == f"upstream.api.default.default.{DC}"
    # the upstream cluster is mTLS with the gateway's leaf, pinned to api's identity
    cluster = to_dict(res.of_type(CLUSTER)[api_cluster].message)
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == api_cluster
    assert tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"] == {
        "inline_string": LEAF
    }
    assert list(res.of_type(ENDPOINT)) == [api_cluster]


def _terminating(**service: object) -> TerminatingSnapshot:
    return TerminatingSnapshot(
        proxy_id="term",
        service="term",
        datacenter=DC,
        trust_domain=TD,
        address="127.0.0.1",
        port=8443,
        roots_pem=(ROOT_A,),
        default_allow=True,
        services=(
            LinkedService(
                name="ext",
                leaf_cert_pem="EXT-LEAF",
                leaf_key_pem="EXT-KEY",
                intentions=(samples.intention("client", "deny", dest="ext"),),
                endpoints=(Endpoint("192.0.2.7", 80),),
                **service,  # type: ignore[arg-type]
            ),
        ),
        version="1",
    )


def test_terminating_chain_by_sni_with_the_linked_leaf_and_rbac() -> None:
    res = build(_terminating())
    [name] = res.of_type(LISTENER)
    assert name == "default:127.0.0.1:8443"
    listener = to_dict(res.of_type(LISTENER)[name].message)
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    [chain] = listener["filter_chains"]
    ext = cluster_name("ext", DC, TD)
    assert chain["filter_chain_match"]["server_names"] == [ext]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"] == {
        "inline_string": "EXT-LEAF"
    }
    rbac, proxy = chain["filters"]
    assert rbac["name"] == "envoy.filters.network.rbac"
    assert rbac["typed_config"]["rules"]["action"] == "DENY"
    assert proxy["typed_config"]["cluster"] == ext
    cluster = to_dict(res.of_type(CLUSTER)[ext].message)
    assert cluster["type"] == "STATIC"
    assert "transport_socket" not in cluster  # a plain external service
    lb = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert lb["endpoint"]["address"]["socket_address"] == {
        "address": "192.0.2.7",
        "port_value": 80,
    }


def test_terminating_originates_tls_with_the_entry_files() -> None:
    res = build(
        _terminating(
            ca_file="/etc/ext/ca.pem",
            cert_file="/etc/ext/cert.pem",
            key_file="/etc/ext/key.pem",
            sni="ext.example.com",
        )
    )
    cluster = to_dict(res.of_type(CLUSTER)[cluster_name("ext", DC, TD)].message)
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "ext.example.com"
    common = tls["common_tls_context"]
    assert common["validation_context"]["trusted_ca"] == {"filename": "/etc/ext/ca.pem"}
    assert common["tls_certificates"][0]["private_key"] == {"filename": "/etc/ext/key.pem"}


def test_terminating_without_linked_services_has_no_listener() -> None:
    res = build(replace(_terminating(), services=()))
    assert not res.of_type(LISTENER) and not res.of_type(CLUSTER)


def test_terminating_resolves_a_host_name_address() -> None:
    snap = _terminating()
    [svc] = snap.services
    named = replace(svc, endpoints=(Endpoint("ext.example.com", 443),))
    res = build(replace(snap, services=(named,)))
    cluster = to_dict(res.of_type(CLUSTER)[cluster_name("ext", DC, TD)].message)
    assert cluster["type"] == "STRICT_DNS"


def test_ingress_service_settings_headers_limits_and_outlier_detection() -> None:
    snap = _ingress()
    http, tcp = snap.listeners
    api = replace(
        http.services[0],
        request_headers=(("Add", {"x-a": "1"}), ("Remove", ["x-gone"]), ("Set", {"x-s": "2"})),
        response_headers=(("Set", {"x-r": "3"}),),
        limits=(10, 0, 30),
        passive_health_check=(("BaseEjectionTime", 30_000_000_000), ("MaxFailures", 5)),
    )
    res = build(replace(snap, listeners=(replace(http, services=(api,)), tcp)))
    [vhost] = to_dict(res.of_type(ROUTE)["8080"].message)["virtual_hosts"]
    assert vhost["request_headers_to_add"] == [
        {"header": {"key": "x-a", "value": "1"}},  # APPEND_IF_EXISTS_OR_ADD, the default
        {"header": {"key": "x-s", "value": "2"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
    ]
    assert vhost["request_headers_to_remove"] == ["x-gone"]
    assert vhost["response_headers_to_add"][0]["header"] == {"key": "x-r", "value": "3"}
    cluster = to_dict(res.of_type(CLUSTER)[cluster_name("api", DC, TD)].message)
    assert cluster["circuit_breakers"]["thresholds"] == [
        {"max_connections": 10, "max_requests": 30}
    ]
    assert cluster["outlier_detection"] == {"consecutive_5xx": 5, "base_ejection_time": "30s"}


def test_ingress_tls_listener_presents_its_certificate() -> None:
    snap = _ingress()
    http, tcp = snap.listeners
    tls = IngressTLS(cert_pem="GW-CERT", key_pem="GW-KEY", min_version="TLSv1_2")
    res = build(replace(snap, listeners=(replace(http, tls=tls), tcp)))
    listener = to_dict(res.of_type(LISTENER)["http:10.1.1.1:8080"].message)
    context = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert "require_client_certificate" not in context  # clients outside the mesh
    common = context["common_tls_context"]
    assert common["tls_certificates"][0]["certificate_chain"] == {"inline_string": "GW-CERT"}
    assert common["tls_params"] == {"tls_minimum_protocol_version": "TLSv1_2"}
    assert common["alpn_protocols"] == ["http/1.1"]
    plain = to_dict(res.of_type(LISTENER)["tcp:10.1.1.1:9000"].message)
    assert "transport_socket" not in plain["filter_chains"][0]
    # cipher suites (Envoy's names, as the agent maps them) and a maximum version
    tls = replace(tls, max_version="TLSv1_2", cipher_suites=("ECDHE-ECDSA-AES256-GCM-SHA384",))
    res = build(replace(snap, listeners=(replace(http, tls=tls), tcp)))
    listener = to_dict(res.of_type(LISTENER)["http:10.1.1.1:8080"].message)
    context = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert context["common_tls_context"]["tls_params"] == {
        "tls_minimum_protocol_version": "TLSv1_2",
        "tls_maximum_protocol_version": "TLSv1_2",
        "cipher_suites": ["ECDHE-ECDSA-AES256-GCM-SHA384"],
    }
