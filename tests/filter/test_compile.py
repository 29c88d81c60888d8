"""compile_filter against schemas: selector validation, operators per type, value conversion
and the error texts Consul users see."""

from __future__ import annotations

import pytest

from consulpy.filter import FilterError, ListOf, MapOf, compile_filter, schemas, struct
from consulpy.filter.coerce import CoerceError, parse_float, parse_go_bool, parse_int
from consulpy.filter.schema import check_schema


@pytest.mark.parametrize(
    ("schema", "expression", "message"),
    [
        (schemas.NODE, "Nodes == n1", 'Selector "Nodes" is not valid'),
        (schemas.NODE, "node == n1", 'Selector "node" is not valid'),  # case-sensitive
        (schemas.NODE, "CreateIndex == 1", 'Selector "CreateIndex" is not valid'),
        (schemas.NODE, "Node.Name == x", 'Selector "Node.Name" is not valid'),
        (
            schemas.SERVICE_ENTRY,
            "Service.Proxy.Config.foo == bar",
            'Selector "Service.Proxy.Config" is not valid',
        ),
        (
            schemas.SERVICE_ENTRY,
            "Checks.Definition.HTTP == x",
            'Selector "Checks.Definition" is not valid',
        ),
        (
            schemas.SERVICE_ENTRY,
            "Service.Tags.first == x",
            'Selector "Service.Tags.first" is not valid',
        ),
        (
            schemas.SERVICE_ENTRY,
            '"/Service/Nope" == x',
            'Selector "/Service/Nope" is not valid',
        ),
        (schemas.HEALTH_CHECK, "Namespace == default", 'Selector "Namespace" is not valid'),
        (schemas.AGENT_SERVICE, "ContentHash == x", 'Selector "ContentHash" is not valid'),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort matches 80",
            'Invalid match operator "Matches" for selector "ServicePort"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort contains 8",
            'Invalid match operator "In" for selector "ServicePort"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort is empty",
            'Invalid match operator "Is Empty" for selector "ServicePort"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServiceTags == v1",
            'Invalid match operator "Equal" for selector "ServiceTags"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServiceMeta != x",
            'Invalid match operator "Not Equal" for selector "ServiceMeta"',
        ),
        (
            schemas.CATALOG_SERVICE,
            'ServiceMeta matches "x"',
            'Invalid match operator "Matches" for selector "ServiceMeta"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServiceWeights == 1",
            'Invalid match operator "Equal" for selector "ServiceWeights"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "x in ServiceProxy.Upstreams",
            'Invalid match operator "In" for selector "ServiceProxy.Upstreams"',
        ),
        (
            schemas.SERVICE_ENTRY,
            "Checks not contains x",
            'Invalid match operator "Not In" for selector "Checks"',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort == web",
            'Failed to coerce value "web" for selector "ServicePort": '
            'strconv.ParseInt: parsing "web": invalid syntax',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort != 1.5",
            'Failed to coerce value "1.5" for selector "ServicePort": '
            'strconv.ParseInt: parsing "1.5": invalid syntax',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServicePort == 99999999999999999999",
            'Failed to coerce value "99999999999999999999" for selector "ServicePort": '
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServiceEnableTagOverride == yes",
            'Failed to coerce value "yes" for selector "ServiceEnableTagOverride": '
            'strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (
            schemas.CATALOG_SERVICE,
            "ServiceConnect.Native != 2",
            'Failed to coerce value "2" for selector "ServiceConnect.Native": '
            'strconv.ParseBool: parsing "2": invalid syntax',
        ),
        (
            schemas.CATALOG_SERVICE,
            'ServiceName matches "(web)\\\\1"',
            'Failed to compile regular expression "(web)\\\\1": '
            "error parsing regexp: invalid escape sequence: `\\1`",
        ),
        (
            schemas.CATALOG_SERVICE,
            'ServiceName not matches "a(?=b)"',
            'Failed to compile regular expression "a(?=b)": '
            "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
        ),
    ],
)
def test_compile_errors(schema, expression, message):
    with pytest.raises(FilterError) as info:
        compile_filter(expression, schema)
    assert str(info.value) == message


def test_bad_regex_is_refused_without_a_schema_too():
    with pytest.raises(FilterError, match="Failed to compile regular expression"):
        compile_filter("Name matches `(?<!x)y`")


def test_syntax_errors_come_before_schema_checks():
    with pytest.raises(FilterError, match=r"^1:9 \(8\): Unterminated string literal$"):
        compile_filter('Nope == "x', schemas.NODE)


@pytest.mark.parametrize(
    ("schema", "expression"),
    [
        (schemas.NODE, "Meta.any_key == x"),
        (schemas.NODE, 'Meta["with-dash"] != x'),
        (schemas.NODE, "TaggedAddresses.wan matches `^10\\.`"),
        (schemas.NODE, "lan in TaggedAddresses and Meta is not empty"),
        (schemas.NODE, "Locality.Region == eu"),
        (schemas.CATALOG_SERVICE, "ServiceTaggedAddresses.lan.Port == 8000"),
        (schemas.CATALOG_SERVICE, "ServiceProxy.Upstreams.MeshGateway.Mode == local"),
        (schemas.CATALOG_SERVICE, "ServiceProxy.TransparentProxy.OutboundListenerPort == 1"),
        (schemas.CATALOG_SERVICE, "ServiceProxy.Expose.Paths.Path == `/metrics`"),
        (schemas.CATALOG_SERVICE, "ServiceWeights.Passing == 10"),
        (schemas.CATALOG_SERVICE, "ServicePort == 8080"),
        (schemas.CATALOG_SERVICE, 'ServicePort == "8080"'),
        (schemas.CATALOG_SERVICE, 'ServicePort == "0x1F90"'),
        (schemas.CATALOG_SERVICE, "ServiceEnableTagOverride == true"),
        (schemas.CATALOG_SERVICE, "ServiceEnableTagOverride == T"),
        (schemas.CATALOG_SERVICE, "ServiceAddress is empty"),  # is empty on a string
        (schemas.NODE_SERVICE, "Connect.Native == 1"),
        (schemas.NODE_SERVICE, "Proxy.EnvoyExtensions.Name == lua"),
        (schemas.HEALTH_CHECK, "ExposedPort == 0 and ServiceTags is empty"),
        (schemas.SERVICE_ENTRY, "Checks.ServiceTags contains v1"),
        (schemas.SERVICE_ENTRY, '"/Node/Meta/rack" == r1'),
        (schemas.AGENT_SERVICE, "Proxy.Mode == transparent"),
    ],
)
def test_valid_selectors(schema, expression):
    compile_filter(expression, schema)


def test_empty_expression_keeps_everything():
    f = compile_filter("", schemas.NODE)
    items = [{"Node": "a"}, {"Node": "b"}]
    assert f.apply(items) == items
    assert f.apply_map({"x": {}}) == {"x": {}}
    assert f.matches({}) is True
    assert f.expr is None


def test_filter_repr_and_attributes():
    f = compile_filter("Node==n1 and Meta.x is empty", schemas.NODE)
    assert repr(f) == "Filter('Node == \"n1\" and Meta.x is empty')"
    assert f.expression == "Node==n1 and Meta.x is empty"
    assert f.schema is schemas.NODE


def test_user_defined_schema():
    schema = struct(
        Name=str,
        Weight=float,
        Labels=MapOf(str),
        Ports=ListOf(int),
        Items=ListOf(struct(Kind=str, Sizes=ListOf(int))),
    )
    f = compile_filter('Weight == 1.5 and 443 in Ports and Items.Kind == "disk"', schema)
    assert f.matches({"Name": "a", "Weight": 1.5, "Ports": [80, 443], "Items": [{"Kind": "disk"}]})
    assert not f.matches({"Weight": 1.5, "Ports": [80], "Items": [{"Kind": "disk"}]})
    assert compile_filter("3 in Items.Sizes", schema).matches({"Items": [{}, {"Sizes": [3]}]})
    with pytest.raises(FilterError, match=r'for selector "Ports": strconv\.ParseInt'):
        compile_filter("x in Ports", schema)
    with pytest.raises(FilterError, match=r'Selector "Labels\.a\.b" is not valid'):
        compile_filter("Labels.a.b == 1", schema)


@pytest.mark.parametrize(
    "bad",
    [list, {"A": dict}, {"": str}, MapOf(object), ListOf(3), {"A": {"B": bytes}}],
)
def test_malformed_schemas_are_programming_errors(bad):
    with pytest.raises(TypeError):
        check_schema(bad)
    with pytest.raises(TypeError):
        compile_filter("A == 1", bad)


def test_every_endpoint_schema_is_well_formed():
    for name, schema in schemas.ENDPOINT_SCHEMAS.items():
        check_schema(schema, name)
    assert schemas.ENDPOINT_SCHEMAS["health/service"] is schemas.SERVICE_ENTRY
    with pytest.raises(TypeError):
        schemas.NODE["Extra"] = str  # type: ignore[index]


# -- Go's strconv rules for converting values ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("8080", 8080),
        ("-1", -1),
        ("+5", 5),
        ("0", 0),
        ("0x1F", 31),
        ("0X1f", 31),
        ("0o17", 15),
        ("017", 15),  # legacy octal
        ("0b101", 5),
        ("1_000", 1000),
        ("0x_1f", 31),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_parse_int(raw, value):
    assert parse_int(raw) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "invalid syntax"),
        ("abc", "invalid syntax"),
        ("1.0", "invalid syntax"),
        ("08", "invalid syntax"),
        ("0x", "invalid syntax"),
        ("_1", "invalid syntax"),
        ("1__0", "invalid syntax"),
        ("1_", "invalid syntax"),
        (" 1", "invalid syntax"),
        ("9223372036854775808", "value out of range"),
    ],
)
def test_parse_int_errors(raw, reason):
    with pytest.raises(CoerceError) as info:
        parse_int(raw)
    assert str(info.value).endswith(f": {reason}")
    assert str(info.value).startswith("strconv.ParseInt: parsing ")


def test_parse_float_and_bool():
    assert parse_float("1.5") == 1.5
    assert parse_float("-2e3") == -2000.0
    assert parse_float("0x1p-2") == 0.25
    assert parse_float("1_0.5") == 10.5
    assert parse_float("Inf") == float("inf")
    with pytest.raises(CoerceError, match="invalid syntax"):
        parse_float("1.5x")
    with pytest.raises(CoerceError, match="value out of range"):
        parse_float("1e400")
    for raw in ("1", "t", "T", "TRUE", "true", "True"):
        assert parse_go_bool(raw) is True
    for raw in ("0", "f", "F", "FALSE", "false", "False"):
        assert parse_go_bool(raw) is False
    with pytest.raises(CoerceError, match=r'strconv\.ParseBool: parsing "yes": invalid syntax'):
        parse_go_bool("yes")
