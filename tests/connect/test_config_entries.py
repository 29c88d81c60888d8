"""Config entries: every kind decoded from PascalCase and snake_case bodies into one canonical
form, Consul's decoding and validation texts, and the discovery-chain graph rules in both
directions (writing a router over tcp, and making a routed service tcp)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consulpy.connect import config_entries as ce
from consulpy.connect import intentions as ix

# CONSULPY_CONNECT_EXAMPLES_SCALE=50 (say) runs a long local sweep of the property test.
EXAMPLES = 200 * max(1, int(os.environ.get("CONSULPY_CONNECT_EXAMPLES_SCALE", "1")))

# Each kind, written once with Consul's JSON field names and once as `consul config write`
# users write HCL (snake_case keys), must decode to the same canonical entry.
CASES: dict[str, tuple[dict, dict, dict]] = {
    "proxy-defaults": (
        {
            "Kind": "proxy-defaults",
            "Name": "global",
            "Config": {"protocol": "http", "local_connect_timeout_ms": 1000},
            "Mode": "transparent",
            "TransparentProxy": {"OutboundListenerPort": 15001, "DialedDirectly": True},
            "MeshGateway": {"Mode": "local"},
            "Expose": {
                "Checks": True,
                "Paths": [
                    {
                        "Path": "/health",
                        "LocalPathPort": 8080,
                        "ListenerPort": 21500,
                        "Protocol": "http",
                    }
                ],
            },
            "AccessLogs": {"Enabled": True, "JSONFormat": "{}"},
            "Meta": {"owner": "platform"},
        },
        {
            "kind": "proxy-defaults",
            "config": {"protocol": "http", "local_connect_timeout_ms": 1000},
            "mode": "transparent",
            "transparent_proxy": {"outbound_listener_port": 15001, "dialed_directly": True},
            "mesh_gateway": {"mode": "local"},
            "expose": {
                "checks": True,
                "paths": [
                    {
                        "path": "/health",
                        "local_path_port": 8080,
                        "listener_port": 21500,
                        "protocol": "http",
                    }
                ],
            },
            "access_logs": {"enabled": True, "json_format": "{}"},
            "meta": {"owner": "platform"},
        },
        {
            "Kind": "proxy-defaults",
            "Name": "global",
            "Config": {"protocol": "http", "local_connect_timeout_ms": 1000},
            "Mode": "transparent",
            "TransparentProxy": {"OutboundListenerPort": 15001, "DialedDirectly": True},
            "MeshGateway": {"Mode": "local"},
            "Expose": {
                "Checks": True,
                "Paths": [
                    {
                        "ListenerPort": 21500,
                        "Path": "/health",
                        "LocalPathPort": 8080,
                        "Protocol": "http",
                    }
                ],
            },
            "AccessLogs": {"Enabled": True, "JSONFormat": "{}"},
            "Meta": {"owner": "platform"},
        },
    ),
    "service-defaults": (
        {
            "Kind": "service-defaults",
            "Name": "web",
            "Protocol": "HTTP",
            "UpstreamConfig": {
                "Defaults": {"ConnectTimeoutMs": 3000, "Limits": {"MaxConnections": 10}},
                "Overrides": [
                    {
                        "Name": "db",
                        "Protocol": "GRPC",
                        "PassiveHealthCheck": {"Interval": "10s", "MaxFailures": 3},
                    }
                ],
            },
            "MaxInboundConnections": 50,
            "LocalRequestTimeoutMs": 2000,
        },
        {
            "kind": "service-defaults",
            "name": "web",
            "protocol": "HTTP",
            "upstream_config": {
                "defaults": {"connect_timeout_ms": "3000", "limits": {"max_connections": 10}},
                "overrides": [
                    {
                        "name": "db",
                        "protocol": "GRPC",
                        "passive_health_check": {"interval": 10_000_000_000, "max_failures": 3},
                    }
                ],
            },
            "max_inbound_connections": 50,
            "local_request_timeout_ms": 2000,
        },
        {
            "Kind": "service-defaults",
            "Name": "web",
            "Protocol": "http",
            "TransparentProxy": {},
            "MeshGateway": {},
            "Expose": {},
            "UpstreamConfig": {
                "Overrides": [
                    {
                        "Name": "db",
                        "Protocol": "grpc",
                        "PassiveHealthCheck": {"Interval": 10_000_000_000, "MaxFailures": 3},
                    }
                ],
                "Defaults": {"ConnectTimeoutMs": 3000, "Limits": {"MaxConnections": 10}},
            },
            "MaxInboundConnections": 50,
            "LocalRequestTimeoutMs": 2000,
        },
    ),
    "service-intentions": (
        {
            "Kind": "service-intentions",
            "Name": "db",
            "Meta": {"owner": "team-a"},
            "Sources": [
                {"Name": "*", "Action": "deny"},
                {
                    "Name": "admin",
                    "Permissions": [
                        {"Action": "allow", "HTTP": {"PathPrefix": "/v1", "Methods": ["get"]}}
                    ],
                },
            ],
        },
        {
            "kind": "service-intentions",
            "name": "db",
            "meta": {"owner": "team-a"},
            "sources": [
                {"name": "*", "action": "deny"},
                {
                    "name": "admin",
                    "permissions": [
                        {"action": "allow", "http": {"path_prefix": "/v1", "methods": ["get"]}}
                    ],
                },
            ],
        },
        {
            "Kind": "service-intentions",
            "Name": "db",
            "Sources": [
                {
                    "Name": "admin",
                    "Permissions": [
                        {"Action": "allow", "HTTP": {"PathPrefix": "/v1", "Methods": ["GET"]}}
                    ],
                    "Precedence": 9,
                    "Type": "consul",
                },
                {"Name": "*", "Action": "deny", "Precedence": 8, "Type": "consul"},
            ],
            "Meta": {"owner": "team-a"},
        },
    ),
    "service-router": (
        {
            "Kind": "service-router",
            "Name": "web",
            "Routes": [
                {
                    "Match": {
                        "HTTP": {
                            "PathPrefix": "/admin",
                            "Header": [{"Name": "x-debug", "Present": True}],
                            "QueryParam": [{"Name": "v", "Exact": "2"}],
                            "Methods": ["get"],
                        }
                    },
                    "Destination": {
                        "Service": "admin",
                        "PrefixRewrite": "/",
                        "RequestTimeout": "5s",
                        "NumRetries": 3,
                        "RetryOnConnectFailure": True,
                        "RetryOnStatusCodes": [503],
                    },
                }
            ],
        },
        {
            "kind": "service-router",
            "name": "web",
            "routes": [
                {
                    "match": {
                        "http": {
                            "path_prefix": "/admin",
                            "header": [{"name": "x-debug", "present": "true"}],
                            "query_param": [{"name": "v", "exact": "2"}],
                            "methods": "get",
                        }
                    },
                    "destination": {
                        "service": "admin",
                        "prefix_rewrite": "/",
                        "request_timeout": 5_000_000_000,
                        "num_retries": "3",
                        "retry_on_connect_failure": True,
                        "retry_on_status_codes": [503],
                    },
                }
            ],
        },
        {
            "Kind": "service-router",
            "Name": "web",
            "Routes": [
                {
                    "Match": {
                        "HTTP": {
                            "PathPrefix": "/admin",
                            "Header": [{"Name": "x-debug", "Present": True}],
                            "QueryParam": [{"Name": "v", "Exact": "2"}],
                            "Methods": ["GET"],
                        }
                    },
                    "Destination": {
                        "Service": "admin",
                        "PrefixRewrite": "/",
                        "RequestTimeout": "5s",
                        "NumRetries": 3,
                        "RetryOnConnectFailure": True,
                        "RetryOnStatusCodes": [503],
                    },
                }
            ],
        },
    ),
    "service-splitter": (
        {
            "Kind": "service-splitter",
            "Name": "web",
            "Splits": [
                {"Weight": 90, "ServiceSubset": "v1"},
                {"Weight": 10, "Service": "web-canary"},
            ],
        },
        {
            "kind": "service-splitter",
            "name": "web",
            "splits": [
                {"weight": "90", "service_subset": "v1"},
                {"weight": 10.0, "service": "web-canary"},
            ],
        },
        {
            "Kind": "service-splitter",
            "Name": "web",
            "Splits": [
                {"Weight": 90, "ServiceSubset": "v1"},
                {"Weight": 10, "Service": "web-canary"},
            ],
        },
    ),
    "service-resolver": (
        {
            "Kind": "service-resolver",
            "Name": "web",
            "DefaultSubset": "v1",
            "Subsets": {
                "v1": {"Filter": 'Service.Meta.version == "1"', "OnlyPassing": True},
                "v2": {"Filter": 'Service.Meta.version == "2"'},
            },
            "Failover": {"*": {"Datacenters": ["dc2", "dc3"]}},
            "ConnectTimeout": "15s",
            "RequestTimeout": "1m30s",
            "LoadBalancer": {
                "Policy": "ring_hash",
                "RingHashConfig": {"MinimumRingSize": 1024},
                "HashPolicies": [
                    {"Field": "cookie", "FieldValue": "id", "CookieConfig": {"TTL": "1m"}},
                    {"SourceIP": True},
                ],
            },
        },
        {
            "kind": "service-resolver",
            "name": "web",
            "default_subset": "v1",
            "subsets": {
                "v1": {"filter": 'Service.Meta.version == "1"', "only_passing": True},
                "v2": {"filter": 'Service.Meta.version == "2"'},
            },
            "failover": {"*": {"datacenters": ["dc2", "dc3"]}},
            "connect_timeout": 15_000_000_000,
            "request_timeout": "90s",
            "load_balancer": {
                "policy": "ring_hash",
                "ring_hash_config": {"minimum_ring_size": 1024},
                "hash_policies": [
                    {
                        "field": "cookie",
                        "field_value": "id",
                        "cookie_config": {"ttl": 60_000_000_000},
                    },
                    {"source_ip": True},
                ],
            },
        },
        {
            "Kind": "service-resolver",
            "Name": "web",
            "DefaultSubset": "v1",
            "Subsets": {
                "v1": {"Filter": 'Service.Meta.version == "1"', "OnlyPassing": True},
                "v2": {"Filter": 'Service.Meta.version == "2"'},
            },
            "Failover": {"*": {"Datacenters": ["dc2", "dc3"]}},
            "ConnectTimeout": "15s",
            "RequestTimeout": "1m30s",
            "LoadBalancer": {
                "Policy": "ring_hash",
                "RingHashConfig": {"MinimumRingSize": 1024},
                "HashPolicies": [
                    {
                        "Field": "cookie",
                        "FieldValue": "id",
                        "CookieConfig": {"TTL": 60_000_000_000},
                    },
                    {"SourceIP": True},
                ],
            },
        },
    ),
    "mesh": (
        {
            "Kind": "mesh",
            "TransparentProxy": {"MeshDestinationsOnly": True},
            "TLS": {"Incoming": {"TLSMinVersion": "TLSv1_2"}},
            "HTTP": {"SanitizeXForwardedClientCert": True},
        },
        {
            "kind": "mesh",
            "name": "mesh",
            "transparent_proxy": {"mesh_destinations_only": True},
            "tls": {"incoming": {"tls_min_version": "TLSv1_2"}},
            "http": {"sanitize_x_forwarded_client_cert": True},
        },
        {
            "Kind": "mesh",
            "Name": "mesh",
            "TransparentProxy": {"MeshDestinationsOnly": True},
            "TLS": {"Incoming": {"TLSMinVersion": "TLSv1_2"}},
            "HTTP": {"SanitizeXForwardedClientCert": True},
        },
    ),
    "ingress-gateway": (
        {
            "Kind": "ingress-gateway",
            "Name": "ingress",
            "TLS": {"Enabled": True},
            "Listeners": [
                {
                    "Port": 8080,
                    "Protocol": "HTTP",
                    "Services": [{"Name": "web", "Hosts": ["web.example.com"]}, {"Name": "api"}],
                },
                {"Port": 9000, "Services": [{"Name": "db"}]},
            ],
        },
        {
            "kind": "ingress-gateway",
            "name": "ingress",
            "tls": {"enabled": True},
            "listeners": [
                {
                    "port": 8080,
                    "protocol": "HTTP",
                    "services": [{"name": "web", "hosts": ["web.example.com"]}, {"name": "api"}],
                },
                {"port": "9000", "services": [{"name": "db"}]},
            ],
        },
        {
            "Kind": "ingress-gateway",
            "Name": "ingress",
            "TLS": {"Enabled": True},
            "Listeners": [
                {
                    "Port": 8080,
                    "Protocol": "http",
                    "Services": [
                        {"Name": "web", "Hosts": ["web.example.com"]},
                        {"Name": "api", "Hosts": None},
                    ],
                },
                {"Port": 9000, "Protocol": "tcp", "Services": [{"Name": "db", "Hosts": None}]},
            ],
        },
    ),
    "terminating-gateway": (
        {
            "Kind": "terminating-gateway",
            "Name": "egress",
            "Services": [{"Name": "billing", "CAFile": "/ca.pem", "SNI": "billing.example.com"}],
        },
        {
            "kind": "terminating-gateway",
            "name": "egress",
            "services": [{"name": "billing", "ca_file": "/ca.pem", "sni": "billing.example.com"}],
        },
        {
            "Kind": "terminating-gateway",
            "Name": "egress",
            "Services": [{"Name": "billing", "CAFile": "/ca.pem", "SNI": "billing.example.com"}],
        },
    ),
}


def test_every_kind_has_a_case() -> None:
    assert set(CASES) == set(ce.KINDS)


@pytest.mark.parametrize("kind", list(CASES))
def test_every_kind_normalizes_from_pascal_and_snake_case(kind: str) -> None:
    pascal, snake, expected = CASES[kind]
    assert ce.normalize(pascal) == expected
    assert ce.normalize(snake) == expected


@pytest.mark.parametrize("kind", list(CASES))
def test_canonical_entries_are_stable_and_msgpack_encodable(kind: str) -> None:
    canonical = ce.normalize(CASES[kind][0])
    assert ce.normalize(copy.deepcopy(canonical)) == canonical
    assert msgpack.unpackb(msgpack.packb(canonical)) == canonical
    # The store adds its indexes; writing the entry back with them is fine.
    assert ce.normalize({**canonical, "CreateIndex": 5, "ModifyIndex": 9}) == canonical


def test_minimal_entries_get_consul_defaults() -> None:
    assert ce.normalize({"Kind": "service-defaults", "Name": "web"}) == {
        "Kind": "service-defaults",
        "Name": "web",
        "Protocol": "",
        "TransparentProxy": {},
        "MeshGateway": {},
        "Expose": {},
    }
    assert ce.normalize({"Kind": "proxy-defaults"}) == {
        "Kind": "proxy-defaults",
        "Name": "global",
        "Config": None,
        "TransparentProxy": {},
        "MeshGateway": {},
        "Expose": {},
    }
    assert ce.normalize({"Kind": "mesh"}) == {
        "Kind": "mesh",
        "Name": "mesh",
        "TransparentProxy": {"MeshDestinationsOnly": False},
    }
    assert ce.normalize({"Kind": "service-router", "Name": "web"}) == {
        "Kind": "service-router",
        "Name": "web",
        "Routes": None,
    }
    assert ce.normalize({"Kind": "service-resolver", "Name": "web"}) == {
        "Kind": "service-resolver",
        "Name": "web",
    }


def test_weak_typing_and_hcl_block_lists() -> None:
    got = ce.normalize(
        {
            "kind": "service-defaults",
            "name": "web",
            "transparent_proxy": [{"dialed_directly": "true"}],  # an HCL block decodes as a list
            "max_inbound_connections": "0x10",
            "destination": {"addresses": "example.com", "port": 443.0},
        }
    )
    assert got["TransparentProxy"] == {"DialedDirectly": True}
    assert got["MaxInboundConnections"] == 16
    assert got["Destination"] == {"Addresses": ["example.com"], "Port": 443}
    # Keys match case-insensitively, as mapstructure does.
    assert ce.normalize({"KIND": "x", "kind": "service-defaults", "NAME": "web"})["Name"] == "web"


def test_split_weights_are_rounded_to_hundredths() -> None:
    got = ce.normalize(
        {
            "Kind": "service-splitter",
            "Name": "web",
            "Splits": [{"Weight": 33.333}, {"Weight": 66.667, "Service": "b"}],
        }
    )
    assert [s["Weight"] for s in got["Splits"]] == [33.33, 66.67]


# --------------------------------------------------------------------------------------------
# Decoding errors (Consul: 400 "Request decoding failed: <text>")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"Name": "web"}, "Payload does not contain a kind/Kind key at the top level"),
        ({"Kind": 3, "Name": "web"}, "Kind value in payload is not a string"),
        (
            {"Kind": "service-exporter", "Name": "web"},
            "invalid config entry kind: service-exporter",
        ),
        (
            {"Kind": "service-defaults", "Name": "web", "Foo": 1},
            '1 error occurred:\n\t* invalid config key "Foo"\n\n',
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "db",
                "Sources": [{"Name": "web", "Action": "allow", "Namespace": "x", "Colour": "red"}],
            },
            '2 errors occurred:\n\t* invalid config key "Sources[0].Namespace", namespaces are '
            "a consul "
            'enterprise feature\n\t* invalid config key "Sources[0].Colour"\n\n',
        ),
        (
            {"Kind": "service-defaults", "Name": "web", "Partition": "p"},
            '1 error occurred:\n\t* invalid config key "Partition", partitions are a consul '
            "enterprise feature\n\n",
        ),
        (
            {"Kind": "service-defaults", "Name": {"a": 1}},
            "1 error(s) decoding:\n\n* 'Name' expected type 'string', got unconvertible type "
            "'map[string]interface {}'",
        ),
        (
            {"Kind": "service-defaults", "Name": "web", "MaxInboundConnections": "many"},
            "1 error(s) decoding:\n\n* cannot parse 'MaxInboundConnections' as int: "
            'strconv.ParseInt: parsing "many": invalid syntax',
        ),
        (
            {"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "soon"},
            "1 error(s) decoding:\n\n* error decoding 'ConnectTimeout': time: invalid duration "
            '"soon"',
        ),
        (
            {
                "Kind": "service-router",
                "Name": "web",
                "Routes": [{"Destination": {"NumRetries": -1}}],
            },
            "1 error(s) decoding:\n\n* cannot parse 'Routes[0].Destination.NumRetries', -1 "
            "overflows uint",
        ),
        (
            {"Kind": "service-defaults", "Name": "web", "TransparentProxy": "on"},
            "1 error(s) decoding:\n\n* 'TransparentProxy' expected a map, got 'string'",
        ),
        (
            {"Kind": "proxy-defaults", "Config": "protocol=http"},
            "1 error(s) decoding:\n\n* 'Config' expected a map, got 'string'",
        ),
    ],
)
def test_decoding_errors(body: dict, error: str) -> None:
    with pytest.raises(ce.EntryError) as info:
        ce.normalize(body)
    assert str(info.value) == error
    assert info.value.decoding is True


def test_body_must_be_an_object() -> None:
    with pytest.raises(ce.EntryError) as info:
        ce.normalize(["not", "an", "object"])  # type: ignore[arg-type]
    assert info.value.decoding is True


def test_make_key_checks_the_kind() -> None:
    assert ce.make_key("mesh", "mesh") == ("mesh", "mesh")
    with pytest.raises(ce.EntryError, match="invalid config entry kind: nope"):
        ce.make_key("nope", "x")


# --------------------------------------------------------------------------------------------
# Validation texts, per kind


def _error(body: dict) -> str:
    with pytest.raises(ce.EntryError) as info:
        ce.normalize(body)
    assert info.value.decoding is False
    return str(info.value)


SD = {"Kind": "service-defaults", "Name": "web"}
ROUTER = {"Kind": "service-router", "Name": "web"}
SPLITTER = {"Kind": "service-splitter", "Name": "web"}
RESOLVER = {"Kind": "service-resolver", "Name": "web"}
SUBSETS = {"v1": {}, "v2": {}}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"Kind": "proxy-defaults", "Name": "local"},
            'invalid name ("local"), only "global" is supported',
        ),
        ({"Kind": "mesh", "Name": "other"}, 'invalid name ("other"), only "mesh" is supported'),
        (
            {"Kind": "proxy-defaults", "Meta": {"k": "v" * 513}},
            '1 error occurred:\n\t* Meta value for key "k" exceeds maximum length 512\n\n',
        ),
        ({"Kind": "service-defaults"}, "Name is required"),
        (
            {**SD, "Name": "*"},
            "service-defaults name must be the name of a service, and not a wildcard",
        ),
        (
            {**SD, "BalanceInboundConnections": "round_robin"},
            "1 error occurred:\n\t* invalid value for balance_inbound_connections: round_robin\n\n",
        ),
        (
            {**SD, "UpstreamConfig": {}, "Destination": {"Addresses": ["a.com"], "Port": 1}},
            "1 error occurred:\n\t* UpstreamConfig and Destination are mutually exclusive for "
            "service defaults\n\n",
        ),
        (
            {
                **SD,
                "UpstreamConfig": {
                    "Overrides": [{"Protocol": "http"}, {"Name": "*"}],
                    "Defaults": {"Name": "db"},
                },
            },
            "3 errors occurred:\n\t* error in upstream override for : Name is required\n\t"
            "* error in upstream override for *: Wildcard name is not supported\n\t"
            "* error in upstream defaults: Name must be empty\n\n",
        ),
        (
            {**SD, "UpstreamConfig": {"Defaults": {"Limits": {"MaxPendingRequests": -1}}}},
            "1 error occurred:\n\t* error in upstream defaults: max pending requests cannot be "
            "negative\n\n",
        ),
        (
            {**SD, "UpstreamConfig": {"Defaults": {"PassiveHealthCheck": {"Interval": "-1s"}}}},
            "1 error occurred:\n\t* error in upstream defaults: passive health check interval "
            "cannot be negative\n\n",
        ),
        (
            {
                **SD,
                "Destination": {"Addresses": ["10.0.0.1", "10.0.0.1", "*.example.com"], "Port": 0},
            },
            "3 errors occurred:\n\t* Duplicate address '10.0.0.1' is not allowed\n\t"
            "* Destination address '*.example.com' is invalid Could not validate address "
            "*.example.com as an IP or Hostname\n\t* Invalid Port number 0\n\n",
        ),
        (
            {**SD, "Destination": {"Port": 443}},
            "1 error occurred:\n\t* Destination must contain at least one valid address\n\n",
        ),
        ({"Kind": "service-router"}, "Name is required"),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"PathExact": "a"}}}]},
            "Route[0] PathExact doesn't start with '/': \"a\"",
        ),
        (
            {**ROUTER, "Routes": [{}, {"Match": {"HTTP": {"PathPrefix": "a"}}}]},
            "Route[1] PathPrefix doesn't start with '/': \"a\"",
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"PathPrefix": "/a", "PathRegex": "b"}}}]},
            "Route[0] should only contain at most one of PathExact, PathPrefix, or PathRegex",
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"Header": [{"Exact": "x"}]}}}]},
            "Route[0] Header[0] missing required Name field",
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"Header": [{"Name": "x"}]}}}]},
            "Route[0] Header[0] should only contain one of Present, Exact, Prefix, Suffix, or "
            "Regex",
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"QueryParam": [{"Exact": "x"}]}}}]},
            "Route[0] QueryParam[0] missing required Name field",
        ),
        (
            {
                **ROUTER,
                "Routes": [
                    {
                        "Match": {
                            "HTTP": {"QueryParam": [{"Name": "x", "Exact": "1", "Present": True}]}
                        }
                    }
                ],
            },
            "Route[0] QueryParam[0] should only contain one of Present, Exact, or Regex",
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"Methods": ["GET", "BREW"]}}}]},
            'Route[0] Methods contains an invalid method "BREW"',
        ),
        (
            {**ROUTER, "Routes": [{"Match": {"HTTP": {"Methods": ["put", "PUT"]}}}]},
            'Route[0] Methods contains "PUT" more than once',
        ),
        (
            {
                **ROUTER,
                "Routes": [
                    {
                        "Match": {"HTTP": {"PathRegex": "/a.*"}},
                        "Destination": {"PrefixRewrite": "/"},
                    }
                ],
            },
            "Route[0] cannot make use of PrefixRewrite without configuring either PathExact or "
            "PathPrefix",
        ),
        (
            {**ROUTER, "Routes": [{"Destination": {"RetryOn": ["5xx", "sometimes"]}}]},
            'Route[0] contains an invalid retry condition: "sometimes"',
        ),
        ({"Kind": "service-splitter", "Splits": [{"Weight": 100}]}, "Name is required"),
        ({**SPLITTER}, "no splits configured"),
        (
            {**SPLITTER, "Splits": [{"Weight": 60}, {"Weight": 30, "Service": "b"}]},
            "the sum of all split weights must be 100, not 90.000000",
        ),
        (
            {**SPLITTER, "Splits": [{"Weight": 50}, {"Weight": 49.99, "Service": "b"}]},
            "the sum of all split weights must be 100, not 99.989998",
        ),
        (
            {**SPLITTER, "Splits": [{"Weight": 50}, {"Weight": 50, "Service": "web"}]},
            'split destination occurs more than once: service="web", subset="", namespace="", '
            'partition=""',
        ),
        ({"Kind": "service-resolver"}, "Name is required"),
        (
            {**RESOLVER, "Subsets": {"V1": {}}},
            'Subset "V1" is invalid: must be 63 characters or fewer, begin or end with lower '
            "case alphanumeric characters, and contain lower case alphanumeric characters or "
            "'-' in between",
        ),
        (
            {**RESOLVER, "Subsets": {"a" * 64: {}}},
            f'Subset "{"a" * 64}" is invalid: must be non-empty and 63 characters or fewer',
        ),
        ({**RESOLVER, "Subsets": {"": {}}}, "Subset defined with empty name"),
        (
            {**RESOLVER, "Subsets": {"v1": {"Filter": "Service.Meta.v =="}}},
            'Filter for subset "v1" is not a valid expression: 1:18 (17): no match found at '
            "end of input, expected: value",
        ),
        (
            {**RESOLVER, "DefaultSubset": "v3", "Subsets": SUBSETS},
            'DefaultSubset "v3" is not a valid subset',
        ),
        ({**RESOLVER, "Redirect": {}}, "Redirect is empty"),
        (
            {**RESOLVER, "Redirect": {"Service": "db"}, "Failover": {"*": {"Service": "db"}}},
            "Redirect and Failover cannot both be set",
        ),
        (
            {**RESOLVER, "Redirect": {"Service": "db", "Namespace": "ns"}},
            "Redirect: Setting Namespace requires Consul Enterprise",
        ),
        (
            {**RESOLVER, "Redirect": {"ServiceSubset": "v1"}},
            "Redirect.ServiceSubset defined without Redirect.Service",
        ),
        (
            {**RESOLVER, "Redirect": {"Service": "web", "ServiceSubset": "v9"}, "Subsets": SUBSETS},
            'Redirect.ServiceSubset "v9" is not a valid subset of "web"',
        ),
        (
            {**RESOLVER, "Redirect": {"Service": "db", "Peer": "east", "Datacenter": "dc2"}},
            "Redirect.Peer cannot be set with Redirect.Datacenter",
        ),
        (
            {**RESOLVER, "Failover": {"v9": {"Service": "db"}}, "Subsets": SUBSETS},
            'Bad Failover["v9"]: not a valid subset subset',
        ),
        (
            {**RESOLVER, "Failover": {"*": {}}},
            'Bad Failover["*"]: one of Service, ServiceSubset, Namespace, Targets, or '
            "Datacenters is required",
        ),
        (
            {**RESOLVER, "Failover": {"*": {"Service": "db", "Policy": {"Mode": "fastest"}}}},
            "Bad Failover[\"*\"]: Policy must be one of '', 'default', or 'order-by-locality'",
        ),
        (
            {**RESOLVER, "Failover": {"*": {"ServiceSubset": "v9"}}, "Subsets": SUBSETS},
            'Bad Failover["*"]: ServiceSubset "v9" is not a valid subset of ""',
        ),
        (
            {
                **RESOLVER,
                "Failover": {"*": {"Datacenters": ["dc2"], "Targets": [{"Datacenter": "dc3"}]}},
            },
            'Bad Failover["*"]: Targets cannot be set with Datacenters',
        ),
        (
            {**RESOLVER, "Failover": {"*": {"Service": "db", "Targets": [{"Datacenter": "dc3"}]}}},
            'Bad Failover["*"]: Targets cannot be set with Service',
        ),
        (
            {**RESOLVER, "Failover": {"*": {"Targets": [{"Peer": "east", "Datacenter": "dc3"}]}}},
            'Bad Failover["*"].Targets[0]: Peer cannot be set with Datacenter',
        ),
        (
            {**RESOLVER, "Failover": {"*": {"Datacenters": ["dc2", ""]}}},
            'Bad Failover["*"].Datacenters: found empty datacenter',
        ),
        ({**RESOLVER, "ConnectTimeout": "-5s"}, "Bad ConnectTimeout '-5s', must be >= 0"),
        (
            {**RESOLVER, "LoadBalancer": {"Policy": "fastest"}},
            'Bad LoadBalancer policy: "fastest" is not supported',
        ),
        (
            {**RESOLVER, "LoadBalancer": {"Policy": "random", "RingHashConfig": {}}},
            "Bad LoadBalancer configuration. RingHashConfig specified for incompatible load "
            'balancing policy "random"',
        ),
        (
            {
                **RESOLVER,
                "LoadBalancer": {"Policy": "round_robin", "HashPolicies": [{"SourceIP": True}]},
            },
            "Bad LoadBalancer configuration: HashPolicies specified for non-hash-based Policy: "
            '"round_robin"',
        ),
        (
            {
                **RESOLVER,
                "LoadBalancer": {
                    "Policy": "maglev",
                    "HashPolicies": [{"Field": "body", "FieldValue": "x"}],
                },
            },
            'Bad LoadBalancer HashPolicy[0]: "body" is not a supported field',
        ),
        (
            {
                **RESOLVER,
                "LoadBalancer": {"Policy": "maglev", "HashPolicies": [{"Field": "header"}]},
            },
            'Bad LoadBalancer HashPolicy[0]: Field "header" was specified without a FieldValue',
        ),
        (
            {
                **RESOLVER,
                "LoadBalancer": {
                    "Policy": "maglev",
                    "HashPolicies": [
                        {
                            "Field": "cookie",
                            "FieldValue": "c",
                            "CookieConfig": {"Session": True, "TTL": "1m"},
                        }
                    ],
                },
            },
            "Bad LoadBalancer HashPolicy[0]: a session cookie cannot have an associated TTL",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [
                    {"Port": 1, "Services": [{"Name": "a"}]},
                    {"Port": 1, "Services": [{"Name": "b"}]},
                ],
            },
            "port 1 declared on two listeners",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [{"Port": 1111, "Protocol": "asdf", "Services": [{"Name": "db"}]}],
            },
            "protocol must be 'tcp', 'http', 'http2', or 'grpc'. 'asdf' is an unsupported protocol",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [{"Port": 1111, "Protocol": "http"}],
            },
            "No service declared for listener with port 1111",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [{"Port": 1111, "Services": [{"Name": "a"}, {"Name": "b"}]}],
            },
            "Multiple services per listener are only supported for L7 protocols, 'http', "
            "'grpc' and 'http2' (listener on port 1111)",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [
                    {"Port": 1111, "Services": [{"Name": "db", "Hosts": ["db.example.com"]}]}
                ],
            },
            "Associating hosts to a service is not supported for the tcp protocol (listener on "
            "port 1111)",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [{"Port": 1111, "Protocol": "http", "Services": [{}]}],
            },
            "Service name cannot be blank (listener on port 1111)",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [
                    {
                        "Port": 1111,
                        "Protocol": "http",
                        "Services": [{"Name": "*", "Hosts": ["a.com"]}],
                    }
                ],
            },
            "Associating hosts to a wildcard service is not supported (listener on port 1111)",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "TLS": {"Enabled": True},
                "Listeners": [
                    {"Port": 1111, "Protocol": "http", "Services": [{"Name": "a", "Hosts": ["*"]}]}
                ],
            },
            "Host '*' is not allowed when TLS is enabled, all hosts must be valid DNS records "
            "to add as a DNSSAN",
        ),
        (
            {"Kind": "terminating-gateway", "Name": "out", "Services": [{}]},
            "Service name cannot be blank.",
        ),
        (
            {
                "Kind": "terminating-gateway",
                "Name": "out",
                "Services": [{"Name": "a"}, {"Name": "a"}],
            },
            'Service "a" was specified more than once within a namespace',
        ),
        (
            {
                "Kind": "terminating-gateway",
                "Name": "out",
                "Services": [{"Name": "a", "CertFile": "/c.pem"}],
            },
            'Service "a" must have a CertFile, CAFile, and KeyFile specified for TLS origination',
        ),
        ({"Kind": "terminating-gateway", "Services": []}, "Name is required"),
        (
            {"Kind": "ingress-gateway", "Name": "in", "TLS": {"TLSMinVersion": "TLSv1_9"}},
            "no matching TLS version found for TLSv1_9, please specify one of "
            "[TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3]",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "TLS": {"TLSMinVersion": "TLSv1_3", "TLSMaxVersion": "TLSv1_2"},
            },
            "configuring max version TLSv1_2 less than the configured min version TLSv1_3 "
            "is invalid",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "Listeners": [
                    {
                        "Port": 1111,
                        "Protocol": "tcp",
                        "TLS": {
                            "TLSMinVersion": "TLSv1_3",
                            "CipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
                        },
                        "Services": [{"Name": "a"}],
                    }
                ],
            },
            "configuring CipherSuites is only applicable to connections negotiated with TLS "
            "1.2 or earlier, TLSMinVersion is set to TLSv1_3",
        ),
        (
            {
                "Kind": "ingress-gateway",
                "Name": "in",
                "TLS": {"CipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "RC4"]},
            },
            "no matching Envoy TLS cipher suite found for RC4",
        ),
    ],
)
def test_validation_texts(body: dict, error: str) -> None:
    assert _error(body) == error


# --------------------------------------------------------------------------------------------
# The discovery-chain graph


class Store:
    """The stored entries, as the state store would hand them to check_graph."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}

    def lookup(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.entries.get((kind, name))

    def list_entries(self, kind: str) -> Iterable[dict[str, Any]]:
        return [e for (k, _), e in sorted(self.entries.items()) if k == kind]

    def put(self, body: dict) -> dict:
        entry = ce.normalize(body)
        ce.check_graph(entry, self.lookup, list_entries=self.list_entries)
        self.entries[(entry["Kind"], entry["Name"])] = entry
        return entry

    def delete(self, kind: str, name: str) -> None:
        entry = self.entries[(kind, name)]
        ce.check_graph(entry, self.lookup, deleting=True, list_entries=self.list_entries)
        del self.entries[(kind, name)]


def _graph_error(action: Any, *args: Any) -> str:
    with pytest.raises(ce.GraphError) as info:
        action(*args)
    return str(info.value)


def _advanced(svc: str, protocol: str = "tcp") -> str:
    return (
        f'discovery chain "{svc}" uses a protocol "{protocol}" that does not permit advanced '
        "routing or splitting behavior"
    )


ROUTE_TO_API = {
    "Kind": "service-router",
    "Name": "web",
    "Routes": [{"Match": {"HTTP": {"PathPrefix": "/api"}}, "Destination": {"Service": "api"}}],
}


def test_router_and_splitter_need_an_http_protocol() -> None:
    store = Store()
    assert _graph_error(store.put, {"Kind": "service-router", "Name": "web"}) == _advanced("web")
    split = {"Kind": "service-splitter", "Name": "web", "Splits": [{"Weight": 100}]}
    assert _graph_error(store.put, split) == _advanced("web")
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"})
    store.put(split)
    store.put({"Kind": "service-router", "Name": "web"})
    assert store.entries.keys() >= {("service-splitter", "web"), ("service-router", "web")}


def test_resolvers_work_with_any_protocol() -> None:
    store = Store()
    store.put({"Kind": "service-resolver", "Name": "db", "ConnectTimeout": "3s"})
    store.put({"Kind": "service-defaults", "Name": "db", "Protocol": "tcp"})


def test_reverse_direction_service_defaults_tcp_or_deleted() -> None:
    store = Store()
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    store.put({"Kind": "service-router", "Name": "web"})
    assert _graph_error(
        store.put, {"Kind": "service-defaults", "Name": "web", "Protocol": "tcp"}
    ) == (_advanced("web"))
    assert _graph_error(store.delete, "service-defaults", "web") == _advanced("web")
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "http2"})  # still http-like
    store.delete("service-router", "web")
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "tcp"})  # nothing routes now


def test_proxy_defaults_protocol_counts_and_is_checked() -> None:
    store = Store()
    store.put({"Kind": "proxy-defaults", "Config": {"protocol": "http"}})
    store.put(ROUTE_TO_API)
    assert ce.effective_protocol("web", store.lookup) == "http"
    assert _graph_error(store.put, {"Kind": "proxy-defaults", "Config": {"protocol": "tcp"}}) == (
        _advanced("web")
    )
    assert _graph_error(store.delete, "proxy-defaults", "global") == _advanced("web")


def test_services_a_chain_references_must_share_its_protocol() -> None:
    store = Store()
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    store.put({"Kind": "service-defaults", "Name": "api", "Protocol": "http"})
    store.put(ROUTE_TO_API)
    # Making the routed-to service tcp breaks web's chain, found through list_entries.
    assert _graph_error(
        store.put, {"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"}
    ) == (
        'discovery chain "web" uses inconsistent protocols; service "api" has "tcp" which is '
        'not "http"'
    )
    # Without list_entries only api's own chain is compiled, which is fine on its own.
    tcp_api = ce.normalize({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"})
    ce.check_graph(tcp_api, store.lookup)


def test_splitter_to_a_tcp_service_is_refused() -> None:
    store = Store()
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    store.put({"Kind": "service-defaults", "Name": "canary", "Protocol": "tcp"})
    split = {
        "Kind": "service-splitter",
        "Name": "web",
        "Splits": [{"Weight": 90}, {"Weight": 10, "Service": "canary"}],
    }
    assert _graph_error(store.put, split) == (
        'discovery chain "web" uses inconsistent protocols; service "canary" has "tcp" which is '
        'not "http"'
    )


def test_empty_service_defaults_protocol_means_tcp_in_the_chain() -> None:
    # Consul's chain compiler takes service-defaults' Protocol even when it is empty.
    store = Store()
    store.put({"Kind": "proxy-defaults", "Config": {"protocol": "http"}})
    store.put({"Kind": "service-defaults", "Name": "web"})
    assert ce.effective_protocol("web", store.lookup) == "http"
    assert _graph_error(store.put, {"Kind": "service-router", "Name": "web"}) == _advanced("web")


def test_subsets_redirect_loops_and_splitter_loops() -> None:
    store = Store()
    store.put({"Kind": "proxy-defaults", "Config": {"protocol": "http"}})
    assert (
        _graph_error(
            store.put,
            {
                "Kind": "service-router",
                "Name": "web",
                "Routes": [{"Destination": {"Service": "api", "ServiceSubset": "v2"}}],
            },
        )
        == 'service "api" does not have a subset named "v2"'
    )
    store.put({"Kind": "service-resolver", "Name": "api", "Subsets": {"v2": {"OnlyPassing": True}}})
    store.put(
        {
            "Kind": "service-router",
            "Name": "web",
            "Routes": [{"Destination": {"Service": "api", "ServiceSubset": "v2"}}],
        }
    )
    # Removing the subset a router uses is refused in reverse.
    assert _graph_error(store.put, {"Kind": "service-resolver", "Name": "api"}) == (
        'service "api" does not have a subset named "v2"'
    )

    store.put({"Kind": "service-resolver", "Name": "x", "Redirect": {"Service": "y"}})
    assert _graph_error(
        store.put, {"Kind": "service-resolver", "Name": "y", "Redirect": {"Service": "x"}}
    ) == (
        "detected circular resolver redirect: [x.default.default.dc1 -> y.default.default.dc1 -> "
        "x.default.default.dc1]"
    )

    store.put(
        {
            "Kind": "service-splitter",
            "Name": "a",
            "Splits": [{"Weight": 50, "Service": "b"}, {"Weight": 50}],
        }
    )
    assert (
        _graph_error(
            store.put,
            {
                "Kind": "service-splitter",
                "Name": "b",
                "Splits": [{"Weight": 50, "Service": "a"}, {"Weight": 50}],
            },
        )
        == "detected circular reference: [splitter:a.default.default -> "
        "splitter:b.default.default -> splitter:a.default.default]"
    )


def test_failover_targets_must_share_the_protocol() -> None:
    store = Store()
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    store.put({"Kind": "service-defaults", "Name": "backup", "Protocol": "grpc"})
    # A resolver is not advanced routing, but every service in a chain must share a protocol.
    failover = {"Kind": "service-resolver", "Name": "web", "Failover": {"*": {"Service": "backup"}}}
    assert _graph_error(store.put, failover) == (
        'discovery chain "web" uses inconsistent protocols; service "backup" has "grpc" which '
        'is not "http"'
    )
    store.put({"Kind": "service-defaults", "Name": "backup", "Protocol": "http"})
    store.put(failover)
    # ... and the failover target cannot drift away afterwards.
    assert _graph_error(
        store.put, {"Kind": "service-defaults", "Name": "backup", "Protocol": "tcp"}
    ) == (
        'discovery chain "web" uses inconsistent protocols; service "backup" has "tcp" which '
        'is not "http"'
    )


def test_external_sni_services_cannot_be_redirected() -> None:
    store = Store()
    store.put({"Kind": "service-defaults", "Name": "ext", "ExternalSNI": "ext.example.com"})
    assert _graph_error(
        store.put, {"Kind": "service-resolver", "Name": "ext", "Subsets": {"v1": {}}}
    ) == ('service "ext" has an external SNI set; cannot define subsets for external services')


def test_other_kinds_have_no_graph_rules() -> None:
    store = Store()
    store.put(
        {
            "Kind": "service-intentions",
            "Name": "db",
            "Sources": [{"Name": "web", "Action": "allow"}],
        }
    )
    store.put({"Kind": "mesh"})


def test_related_services() -> None:
    router = ce.normalize(
        {
            "Kind": "service-router",
            "Name": "web",
            "Routes": [{"Destination": {"Service": "b"}}, {"Destination": {}}, {}],
        }
    )
    assert ce.related_services(router) == ["b"]
    resolver = ce.normalize(
        {
            "Kind": "service-resolver",
            "Name": "web",
            "Failover": {"*": {"Targets": [{"Service": "c"}, {"Peer": "p", "Service": "d"}]}},
        }
    )
    assert ce.related_services(resolver) == ["c"]
    assert ce.related_services(
        ce.normalize({"Kind": "service-resolver", "Name": "w", "Redirect": {"Service": "z"}})
    ) == ["z"]
    assert ce.related_services(ce.normalize({"Kind": "mesh"})) == []


def test_effective_protocol_precedence() -> None:
    store = Store()
    assert ce.effective_protocol("web", store.lookup) == "tcp"
    store.put({"Kind": "proxy-defaults", "Config": {"protocol": "HTTP2"}})
    assert ce.effective_protocol("web", store.lookup) == "http2"
    store.put({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"})
    assert ce.effective_protocol("web", store.lookup) == "grpc"
    assert ce.effective_protocol("other", store.lookup) == "http2"


# --------------------------------------------------------------------------------------------
# Any body: either a canonical, stable, msgpack-encodable entry or an EntryError


_KEYS = st.sampled_from(
    [
        "Name", "name", "Protocol", "Sources", "Action", "Permissions", "HTTP", "PathPrefix",
        "PathExact", "PathRegex", "Methods", "Header", "Routes", "Match", "Destination",
        "Service", "ServiceSubset", "Splits", "Weight", "Subsets", "Filter", "Redirect",
        "Failover", "Datacenters", "Targets", "ConnectTimeout", "RequestTimeout", "LoadBalancer",
        "Policy", "HashPolicies", "Field", "FieldValue", "Config", "Meta", "Listeners", "Port",
        "Services", "Hosts", "TLS", "Enabled", "UpstreamConfig", "Overrides", "Defaults",
        "Limits", "Addresses", "Type", "Description", "Peer", "LegacyID", "DefaultSubset",
        "Present", "Exact", "Regex", "NumRetries", "Foo",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "web", "*", "/", "/a", "GET", "allow", "deny", "http", "5s", "v1"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)
_BODIES = st.builds(
    lambda kind, fields: {**fields, "Kind": kind},
    st.sampled_from(ce.KINDS),
    st.dictionaries(_KEYS, _JSON, max_size=6),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(_BODIES)
def test_any_body_is_stored_canonically_or_refused(body: dict) -> None:
    try:
        entry = ce.normalize(body)
    except ce.EntryError:
        return
    assert msgpack.unpackb(msgpack.packb(entry)) == entry
    assert ce.normalize(copy.deepcopy(entry)) == entry
    try:
        ce.check_graph(entry, lambda kind, name: None)
    except ce.GraphError:
        pass
    if entry["Kind"] == "service-intentions":
        for intention in ix.from_entries([entry]):
            ix.decide([intention], "web", intention["DestinationName"], default_allow=False)
