"""Evaluation on Consul-shaped results for each endpoint's schema, and the semantics rules:
any-element matching through lists, absent map keys, zero values of omitted fields, typed
comparison."""

from __future__ import annotations

import pytest

from consulpy.filter import FilterError, compile_filter, schemas
from consulpy.filter.nodes import MatchOp
from tests.filter import objects as o


def names(items, key):
    return [item[key] for item in items]


def run(expression, schema, items, key):
    """Apply with the schema, check that the schema-less filter agrees, return the names."""
    typed = compile_filter(expression, schema).apply(o.fresh(items))
    untyped = compile_filter(expression).apply(o.fresh(items))
    assert untyped == typed  # these objects spell out every field, so types agree
    return names(typed, key)


# -- catalog/nodes: Node ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Meta.instance_type == "t2.medium"', ["n1"]),
        ("Datacenter == dc2", ["n2"]),
        ("Datacenter != dc2", ["n1", "edge-1"]),
        ("Meta is empty", ["edge-1"]),  # "Meta": null
        ("Meta is not empty", ["n1", "n2"]),
        ('"rack" in Meta', ["n2"]),
        ('Meta.rack != "r-1"', ["n1", "n2", "edge-1"]),  # absent keys are "not equal"
        ('Meta["consul-network-segment"] is empty', ["n1", "n2", "edge-1"]),
        ('Node matches "^n[0-9]$"', ["n1", "n2"]),
        ('Node not matches "^n"', ["edge-1"]),
        ('Address contains "192.168"', ["edge-1"]),
        ('"10.0" in Address', ["n1", "n2"]),
        ('TaggedAddresses.wan == "10.0.0.6"', ["n2"]),
        ("lan_ipv4 in TaggedAddresses", ["n1", "n2", "edge-1"]),
        ("Locality.Region is empty", ["n1", "n2", "edge-1"]),
        ('"/Meta/instance_type" == "t2.large"', ["n2"]),
        (f"ID == {o.NODES[0]['ID']!r}".replace("'", '"'), ["n1"]),
    ],
)
def test_catalog_nodes(expression, expected):
    assert run(expression, schemas.NODE, o.NODES, "Node") == expected


# -- catalog/service rows: CatalogService ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("ServiceTags contains primary", ["web-1"]),
        ("v1 in ServiceTags", ["web-2"]),
        ("ServiceTags is empty", ["web-sidecar-proxy", "api"]),
        ("ServicePort == 8081", ["web-2"]),
        ("ServicePort != 8081", ["web-1", "web-sidecar-proxy", "api"]),
        ("ServicePort == 0", ["api"]),
        ("ServiceWeights.Passing == 10", ["web-2"]),
        ("ServiceEnableTagOverride == true", ["web-2"]),
        ("ServiceEnableTagOverride == false", ["web-1", "web-sidecar-proxy", "api"]),
        ('ServiceKind == "connect-proxy"', ["web-sidecar-proxy"]),
        ('ServiceKind == ""', ["web-1", "web-2", "api"]),
        ("ServiceProxy.DestinationServiceName == web", ["web-sidecar-proxy"]),
        ("ServiceProxy.Mode == transparent", ["web-sidecar-proxy"]),
        ("ServiceProxy.TransparentProxy.OutboundListenerPort == 15001", ["web-sidecar-proxy"]),
        ("ServiceProxy.Upstreams.DestinationName == db", ["web-sidecar-proxy"]),
        ("ServiceProxy.Upstreams.Datacenter == dc2", ["web-sidecar-proxy"]),
        ("ServiceProxy.Upstreams.MeshGateway.Mode == local", ["web-sidecar-proxy"]),
        ("ServiceProxy.Upstreams.LocalBindPort == 9192", ["web-sidecar-proxy"]),
        ("ServiceProxy.Upstreams is empty", ["web-1", "web-2", "api"]),
        ("ServiceConnect.Native == true", ["api"]),
        ('ServiceMeta.env == prod and NodeMeta.instance_type == "t2.medium"', ["web-1"]),
        ("ServiceMeta.version is not empty", ["web-1"]),
        ("ServiceTaggedAddresses.wan_ipv4.Port == 80", ["web-1"]),
        ("ServiceTaggedAddresses is empty", ["web-2", "web-sidecar-proxy", "api"]),
        ("wan_ipv4 not in ServiceTaggedAddresses", ["web-2", "web-sidecar-proxy", "api"]),
        ("Node == n2 and not ServiceKind is not empty", ["web-2"]),
        ("ServiceLocality.Zone is empty", ["web-1", "web-2", "web-sidecar-proxy", "api"]),
    ],
)
def test_catalog_service_rows(expression, expected):
    assert run(expression, schemas.CATALOG_SERVICE, o.CATALOG_ROWS, "ServiceID") == expected


# -- catalog/node Services map and node-services list: NodeService ----------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Port == 0", ["batch"]),  # "Port" omitted when 0: Go's zero value
        ('Kind == ""', ["consul", "redis", "batch"]),
        ("Kind == connect-proxy", []),  # unquoted: the value is "connect"... no, a syntax error
        ("Tags is empty", ["consul", "redis-sidecar-proxy"]),  # null and []
        ("v1 in Tags", ["redis"]),
        ('Proxy.Expose.Paths.Path == "/metrics"', ["redis-sidecar-proxy"]),
        ("Proxy.Expose.Checks == true", ["redis-sidecar-proxy"]),
        ("Proxy.Upstreams.LocalBindPort == 9191", ["redis-sidecar-proxy"]),
        ('TaggedAddresses.wan.Address == "198.18.1.2"', ["redis"]),
        ('Meta.redis_version matches "^4\\\\."', ["redis"]),
        ("Weights.Warning == 1", ["consul", "redis", "batch", "redis-sidecar-proxy"]),
        ("Service contains redis", ["redis", "redis-sidecar-proxy"]),
    ],
)
def test_catalog_node_services_map(expression, expected):
    if expression == "Kind == connect-proxy":
        with pytest.raises(FilterError, match="must be quoted"):
            compile_filter(expression, schemas.NODE_SERVICE)
        return
    result = compile_filter(expression, schemas.NODE_SERVICE).apply_map(o.fresh(o.NODE_SERVICES))
    assert list(result) == expected
    assert all(result[k] == o.NODE_SERVICES[k] for k in result)
    as_list = compile_filter(expression, schemas.NODE_SERVICE).apply(
        o.fresh(list(o.NODE_SERVICES.values()))
    )
    assert names(as_list, "ID") == expected


# -- health checks: HealthCheck ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Status == critical", ["service:web-2", "_node_maintenance"]),
        ("ServiceName == web and Status != passing", ["service:web-2"]),
        ("CheckID == serfHealth and Node == n2", ["serfHealth"]),
        ("ServiceID is empty", ["serfHealth", "serfHealth", "_node_maintenance"]),
        ('Output contains "refused"', ["service:web-2"]),
        ("v2 in ServiceTags", ["service:web-1"]),
        ("ServiceTags is empty", ["serfHealth", "serfHealth", "_node_maintenance"]),
        ("Type == http or Type == tcp", ["service:web-1", "service:web-2"]),
        ('Notes matches "(?i)KERNEL"', ["_node_maintenance"]),
        ('Interval == "10s" and Timeout == `1s`', ["service:web-1", "service:web-2"]),
        ("ExposedPort != 0", []),
        ('Name == "Serf Health Status"', ["serfHealth", "serfHealth"]),
    ],
)
def test_health_checks(expression, expected):
    assert run(expression, schemas.HEALTH_CHECK, o.HEALTH_CHECKS, "CheckID") == expected


def test_agent_checks_map():
    f = compile_filter('Status == passing and ServiceName == ""', schemas.HEALTH_CHECK)
    assert list(f.apply_map(o.fresh(o.AGENT_CHECKS))) == ["serfHealth"]


# -- health/service entries: ServiceEntry ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Checks.Status == critical", ["web-2"]),  # some check is critical
        ("Checks.Status != passing", ["web-2"]),  # some check is not passing
        ("Checks.Status == passing", ["web-1", "web-2"]),  # some check passes
        ("not Checks.Status == critical", ["web-1", "web-3"]),  # no check is critical
        ("not Checks.Status != passing", ["web-1", "web-3"]),  # every check passes
        ("Checks is empty", ["web-3"]),
        ("Checks is not empty", ["web-1", "web-2"]),
        ('Checks.CheckID == "_node_maintenance"', ["web-2"]),
        ("Checks.ServiceTags contains v1", ["web-2"]),
        ("Checks.ServiceTags is empty", ["web-1", "web-2"]),  # the serfHealth checks
        ('Checks.Output matches "refused$"', ["web-2"]),
        ("Service.Meta is empty", ["web-1", "web-3"]),  # null and {}
        ("Service.Meta.env == staging", ["web-2"]),
        ("Service.Meta.env != staging", ["web-1", "web-3"]),
        ('Node.Meta.rack == "r-2"', ["web-2"]),
        ("Node.Meta is empty", ["web-3"]),
        ("Service.Weights.Passing == 10", ["web-2"]),
        ("v2 in Service.Tags and Node.Datacenter == dc1", ["web-1"]),
        ("Service.TaggedAddresses.lan_ipv4.Port == 8080", ["web-1"]),
        ("Service.Port == 8082 or Service.Port == 8080", ["web-1", "web-3"]),
        ('"/Node/Node" == n2', ["web-2"]),
        ('Node.Node == n1 and (Checks.Status == critical or "v2" in Service.Tags)', ["web-1"]),
    ],
)
def test_health_service_entries(expression, expected):
    entries = compile_filter(expression, schemas.SERVICE_ENTRY).apply(o.fresh(o.SERVICE_ENTRIES))
    assert [e["Service"]["ID"] for e in entries] == expected


# -- agent/services: AgentService ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Kind == "connect-proxy"', ["web-sidecar-proxy"]),
        ("Proxy.TransparentProxy.OutboundListenerPort == 22500", ["web-sidecar-proxy"]),
        ("Proxy.Upstreams.DestinationName == db", ["web-sidecar-proxy"]),
        ("Connect.Native == true", ["native"]),
        ("Weights.Passing == 10", ["redis"]),
        ("EnableTagOverride == true", ["native"]),
        ("Proxy.Mode is empty", ["redis", "native"]),  # no Proxy at all: zero value
        ("Address is empty and Port == 8000", ["redis"]),
        ('TaggedAddresses.wan.Address matches "^198\\\\.51\\\\."', ["redis"]),
        ("mesh in Tags", ["native"]),
    ],
)
def test_agent_services(expression, expected):
    result = compile_filter(expression, schemas.AGENT_SERVICE).apply_map(o.fresh(o.AGENT_SERVICES))
    assert list(result) == expected


def test_agent_services_refuse_bexpr_hidden_fields_but_untyped_can_see_them():
    with pytest.raises(FilterError, match=r'Selector "Proxy\.Config" is not valid'):
        compile_filter("Proxy.Config.foo == bar", schemas.AGENT_SERVICE)
    result = compile_filter("Proxy.Config.foo == bar").apply_map(o.fresh(o.AGENT_SERVICES))
    assert list(result) == ["web-sidecar-proxy"]


# -- semantics rules ---------------------------------------------------------------------------

_ABSENT_KEY = {
    MatchOp.EQUAL: ("Meta.k == v", False),
    MatchOp.NOT_EQUAL: ("Meta.k != v", True),
    MatchOp.IN: ("Meta.k contains v", False),
    MatchOp.NOT_IN: ("Meta.k not contains v", True),
    MatchOp.IS_EMPTY: ("Meta.k is empty", True),
    MatchOp.IS_NOT_EMPTY: ("Meta.k is not empty", False),
    MatchOp.MATCHES: ("Meta.k matches `.*`", False),
    MatchOp.NOT_MATCHES: ("Meta.k not matches `.*`", True),
}


@pytest.mark.parametrize("op", list(MatchOp))
@pytest.mark.parametrize("meta", [{}, {"other": "x"}, None])
@pytest.mark.parametrize("schema", [schemas.NODE, None])
def test_absent_map_key(op, meta, schema):
    expression, expected = _ABSENT_KEY[op]
    assert compile_filter(expression, schema).matches({"Meta": meta}) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "Checks.Status == passing",
        "Checks.Status != passing",
        "passing in Checks.Status",
        "passing not in Checks.Status",
        "Checks.Status is empty",
        "Checks.Status is not empty",
        "Checks.Status matches `.*`",
        "Checks.Status not matches `x`",
        "Checks.ServiceTags is empty",
    ],
)
@pytest.mark.parametrize("schema", [schemas.SERVICE_ENTRY, None])
def test_selector_through_empty_list_matches_nothing(expression, schema):
    f = compile_filter(expression, schema)
    assert f.matches({"Checks": []}) is False
    assert f.matches({"Checks": None}) is (False if schema else f.matches({}))


def test_any_element_semantics_with_negated_operators():
    f = compile_filter("Checks.Status != passing", schemas.SERVICE_ENTRY)
    both = {"Checks": [{"Status": "passing"}, {"Status": "warning"}]}
    assert f.matches(both) is True  # one check is not passing
    g = compile_filter("not Checks.Status == passing", schemas.SERVICE_ENTRY)
    assert g.matches(both) is False  # some check passes


def test_zero_values_for_omitted_struct_fields():
    svc = {"ID": "a", "Service": "a"}  # Kind, Port, Tags, Meta, Proxy ... all omitted
    for expression in (
        'Kind == ""',
        "Port == 0",
        "EnableTagOverride == false",
        "Tags is empty",
        "Meta is empty",
        "Weights.Passing == 0",
        'Proxy.DestinationServiceName == ""',
        "Proxy.Upstreams is empty",
        "Connect.Native == false",
        "x not in Tags",
        "x not in Meta",
    ):
        assert compile_filter(expression, schemas.NODE_SERVICE).matches(svc), expression
    # without a schema there is no zero value: an absent field is "not found"
    assert compile_filter('Kind == ""').matches(svc) is False
    assert compile_filter("Kind is empty").matches(svc) is True
    assert compile_filter("Port != 0").matches(svc) is True


def test_null_struct_and_list_elements_are_zero_values():
    entry = {"Node": None, "Service": None, "Checks": [None, {"Status": "critical"}]}
    assert compile_filter('Node.Node == ""', schemas.SERVICE_ENTRY).matches(entry)
    assert compile_filter("Service.Tags is empty", schemas.SERVICE_ENTRY).matches(entry)
    assert compile_filter('Checks.Status == ""', schemas.SERVICE_ENTRY).matches(entry)
    assert compile_filter("Checks.Status == critical", schemas.SERVICE_ENTRY).matches(entry)


def test_typed_comparison_converts_the_value_once():
    row = {"ServicePort": 8080, "ServiceEnableTagOverride": True}
    for expression in (
        "ServicePort == 8080",
        'ServicePort == "8080"',
        'ServicePort == "0x1F90"',
        'ServicePort == "0o17620"',
        "ServicePort != 80",
        "ServiceEnableTagOverride == true",
        "ServiceEnableTagOverride == True",
        "ServiceEnableTagOverride == 1",
        'ServiceEnableTagOverride != "f"',
    ):
        assert compile_filter(expression, schemas.CATALOG_SERVICE).matches(row), expression


def test_data_that_does_not_fit_the_schema_matches_nothing():
    bad = {"ServicePort": "8080", "ServiceTags": "v1", "ServiceMeta": ["env"]}
    for expression in (
        "ServicePort == 8080",
        "ServicePort != 8080",
        "v1 in ServiceTags",
        "v1 not in ServiceTags",
        "env in ServiceMeta",
        "env not in ServiceMeta",
        "ServiceMeta.env == x",
        "ServiceMeta.env != x",
    ):
        assert not compile_filter(expression, schemas.CATALOG_SERVICE).matches(bad), expression
    for obj in (None, 5, "text", [1, 2], {"ServiceTags": [1, None, {"a": 1}]}):
        # never raises, whatever arrives
        compile_filter("v1 in ServiceTags", schemas.CATALOG_SERVICE).matches(obj)
        compile_filter("v1 in ServiceTags").matches(obj)


def test_untyped_comparison_takes_the_type_of_the_value():
    obj = {
        "Port": 8080,
        "Ratio": 0.5,
        "On": True,
        "Name": "8080",
        "Ports": [80, 443],
        "Mixed": [1, "a", True],
        "Nested": {"Deeper": [{"Value": 3}, {"Value": 4}]},
    }
    yes = [
        "Port == 8080",
        'Port == "8080"',
        "Port == 0x1F90" if False else 'Port == "0x1F90"',
        "Ratio == 0.5",
        'Ratio == "5e-1"',
        "On == true",
        "On == 1",
        "Name == 8080",  # a string field compares text: 8080 is the text "8080"
        "443 in Ports",
        "a in Mixed",
        "1 in Mixed",
        "true in Mixed",
        "Nested.Deeper.Value == 4",
        "Port != 80",
    ]
    no = [
        "Port == abc",  # cannot convert: no match ...
        "Port != abc",  # ... for the negation too
        "On == maybe",
        "On != maybe",
        "Ports == 80",  # a list is not a scalar
        "Ports is empty",
        "b in Mixed",
        "Port contains 80",
        "Port matches `80`",
        "Port is empty",
        "Nested.Deeper.Value == 5",
        "Nested.Deeper.Value.Further == 1",
    ]
    for expression in yes:
        assert compile_filter(expression).matches(obj), expression
    for expression in no:
        assert not compile_filter(expression).matches(obj), expression


def test_apply_keeps_order_and_identity():
    items = o.fresh(o.NODES)
    kept = compile_filter("Datacenter == dc1", schemas.NODE).apply(items)
    assert kept == [items[0], items[2]]
    assert kept[0] is items[0]
    assert compile_filter("Datacenter == dc1", schemas.NODE).apply(iter(items)) == kept
