"""Consul-shaped results (JSON wire form) for the filter tests, modelled on the objects in the
HTTP API spec (§5.3, §6.2, §6.3, §7.5) and Consul's documentation samples."""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]

_PROXY_TYPICAL = {"Mode": "", "MeshGateway": {}, "Expose": {}}


def node(name: str, address: str, meta: JSON | None, **extra: Any) -> JSON:
    return {
        "ID": extra.pop("ID", f"{sum(map(ord, name)):08d}-0000-4000-8000-000000000000"),
        "Node": name,
        "Address": address,
        "Datacenter": extra.pop("Datacenter", "dc1"),
        "TaggedAddresses": {"lan": address, "lan_ipv4": address, "wan": address},
        "Meta": meta,
        "CreateIndex": 8,
        "ModifyIndex": 40,
        **extra,
    }


NODES: list[JSON] = [
    node("n1", "10.0.0.5", {"consul-network-segment": "", "instance_type": "t2.medium"}),
    node("n2", "10.0.0.6", {"instance_type": "t2.large", "rack": "r-2"}, Datacenter="dc2"),
    node("edge-1", "192.168.10.10", None),
]


def catalog_row(node_obj: JSON, service_id: str, name: str, port: int, **extra: Any) -> JSON:
    row = {
        "ID": node_obj["ID"],
        "Node": node_obj["Node"],
        "Address": node_obj["Address"],
        "Datacenter": node_obj["Datacenter"],
        "TaggedAddresses": node_obj["TaggedAddresses"],
        "NodeMeta": node_obj["Meta"],
        "ServiceKind": "",
        "ServiceID": service_id,
        "ServiceName": name,
        "ServiceTags": [],
        "ServiceAddress": "",
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": {},
        "ServicePort": port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": False,
        "ServiceProxy": dict(_PROXY_TYPICAL),
        "ServiceConnect": {},
        "ServiceLocality": None,
        "CreateIndex": 18,
        "ModifyIndex": 18,
    }
    row.update(extra)
    return row


CATALOG_ROWS: list[JSON] = [
    catalog_row(
        NODES[0],
        "web-1",
        "web",
        8080,
        ServiceTags=["v2", "primary"],
        ServiceMeta={"env": "prod", "version": "2.1.0"},
        ServiceTaggedAddresses={
            "lan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
            "wan_ipv4": {"Address": "198.18.0.1", "Port": 80},
        },
    ),
    catalog_row(
        NODES[1],
        "web-2",
        "web",
        8081,
        ServiceTags=["v1"],
        ServiceMeta={"env": "staging"},
        ServiceWeights={"Passing": 10, "Warning": 1},
        ServiceEnableTagOverride=True,
    ),
    catalog_row(
        NODES[1],
        "web-sidecar-proxy",
        "web-sidecar-proxy",
        21000,
        ServiceKind="connect-proxy",
        ServiceProxy={
            "DestinationServiceName": "web",
            "DestinationServiceID": "web-2",
            "LocalServiceAddress": "127.0.0.1",
            "LocalServicePort": 8081,
            "Mode": "transparent",
            "TransparentProxy": {"OutboundListenerPort": 15001},
            "Upstreams": [
                {"DestinationType": "service", "DestinationName": "db", "LocalBindPort": 9191},
                {
                    "DestinationType": "prepared_query",
                    "DestinationName": "cache",
                    "Datacenter": "dc2",
                    "LocalBindPort": 9192,
                    "MeshGateway": {"Mode": "local"},
                },
            ],
            "MeshGateway": {},
            "Expose": {},
        },
    ),
    catalog_row(NODES[2], "api", "api", 0, ServiceConnect={"Native": True}),
]


def node_service(service_id: str, name: str, **extra: Any) -> JSON:
    svc = {
        "ID": service_id,
        "Service": name,
        "Tags": [],
        "Address": "",
        "Meta": {},
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "Proxy": dict(_PROXY_TYPICAL),
        "Connect": {},
        "PeerName": "",
        "CreateIndex": 51,
        "ModifyIndex": 51,
    }
    svc.update(extra)
    return svc


# catalog/node Services map: Kind, Port and TaggedAddresses are omitted when empty.
NODE_SERVICES: dict[str, JSON] = {
    "consul": node_service("consul", "consul", Tags=None, Port=8300),
    "redis": node_service(
        "redis",
        "redis",
        Tags=["v1"],
        Meta={"redis_version": "4.0"},
        Port=8000,
        TaggedAddresses={
            "lan": {"Address": "10.1.10.12", "Port": 8000},
            "wan": {"Address": "198.18.1.2", "Port": 80},
        },
    ),
    "batch": node_service("batch", "batch", Tags=["cron"]),
    "redis-sidecar-proxy": node_service(
        "redis-sidecar-proxy",
        "redis-sidecar-proxy",
        Kind="connect-proxy",
        Port=21000,
        Proxy={
            "DestinationServiceName": "redis",
            "DestinationServiceID": "redis",
            "LocalServicePort": 8000,
            "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}],
            "Expose": {"Checks": True, "Paths": [{"Path": "/metrics", "ListenerPort": 21500}]},
        },
    ),
}


def health_check(node_name: str, check_id: str, status: str, **extra: Any) -> JSON:
    check = {
        "Node": node_name,
        "CheckID": check_id,
        "Name": extra.pop("Name", check_id),
        "Status": status,
        "Notes": "",
        "Output": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": 9,
        "ModifyIndex": 9,
    }
    check.update(extra)
    return check


SERF_N1 = health_check(
    "n1",
    "serfHealth",
    "passing",
    Name="Serf Health Status",
    Output="Agent alive and reachable",
)
WEB1_CHECK = health_check(
    "n1",
    "service:web-1",
    "passing",
    Name="Service 'web' check",
    Output="HTTP GET http://10.0.0.5:8080/health: 200 OK Output: OK",
    ServiceID="web-1",
    ServiceName="web",
    ServiceTags=["v2", "primary"],
    Type="http",
    Interval="10s",
    Timeout="1s",
)
SERF_N2 = health_check(
    "n2",
    "serfHealth",
    "passing",
    Name="Serf Health Status",
    Output="Agent alive and reachable",
)
WEB2_CHECK = health_check(
    "n2",
    "service:web-2",
    "critical",
    Name="Service 'web' check",
    Output="dial tcp 10.0.0.6:8081: connect: connection refused",
    ServiceID="web-2",
    ServiceName="web",
    ServiceTags=["v1"],
    Type="tcp",
    Interval="10s",
    Timeout="1s",
)
MAINT_N2 = health_check(
    "n2",
    "_node_maintenance",
    "critical",
    Name="Node Maintenance Mode",
    Notes="kernel upgrade",
)
HEALTH_CHECKS: list[JSON] = [SERF_N1, WEB1_CHECK, SERF_N2, WEB2_CHECK, MAINT_N2]


def service_entry(node_obj: JSON, service: JSON, checks: list[JSON]) -> JSON:
    return {"Node": node_obj, "Service": service, "Checks": checks}


SERVICE_ENTRIES: list[JSON] = [
    service_entry(
        NODES[0],
        node_service(
            "web-1",
            "web",
            Tags=["v2", "primary"],
            Address="10.0.0.5",
            Meta=None,  # real 1.16 output for a service registered without meta
            Port=8080,
            TaggedAddresses={"lan_ipv4": {"Address": "10.0.0.5", "Port": 8080}},
        ),
        [SERF_N1, WEB1_CHECK],
    ),
    service_entry(
        NODES[1],
        node_service(
            "web-2",
            "web",
            Tags=["v1"],
            Meta={"env": "staging"},
            Port=8081,
            Weights={"Passing": 10, "Warning": 1},
        ),
        [SERF_N2, WEB2_CHECK, MAINT_N2],
    ),
    service_entry(NODES[2], node_service("web-3", "web", Port=8082), []),
]

# agent/services: AgentService values (Tags and Meta forced, Port always present).
AGENT_SERVICES: dict[str, JSON] = {
    "redis": {
        "ID": "redis",
        "Service": "redis",
        "Tags": [],
        "TaggedAddresses": {
            "lan": {"Address": "127.0.0.1", "Port": 8000},
            "wan": {"Address": "198.51.100.53", "Port": 80},
        },
        "Meta": {"redis_version": "4.0"},
        "Port": 8000,
        "Address": "",
        "EnableTagOverride": False,
        "Datacenter": "dc1",
        "Weights": {"Passing": 10, "Warning": 1},
    },
    "web-sidecar-proxy": {
        "Kind": "connect-proxy",
        "ID": "web-sidecar-proxy",
        "Service": "web-sidecar-proxy",
        "Tags": [],
        "Meta": {},
        "Port": 18080,
        "Address": "",
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "Datacenter": "dc1",
        "Proxy": {
            "DestinationServiceName": "web",
            "DestinationServiceID": "web",
            "LocalServiceAddress": "127.0.0.1",
            "LocalServicePort": 8080,
            "Mode": "transparent",
            "TransparentProxy": {"OutboundListenerPort": 22500},
            "Config": {"foo": "bar"},
            "Upstreams": [
                {"DestinationType": "service", "DestinationName": "db", "LocalBindPort": 9191}
            ],
        },
    },
    "native": {
        "ID": "native",
        "Service": "native",
        "Tags": ["mesh"],
        "Meta": {},
        "Port": 9000,
        "Address": "10.0.0.9",
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": True,
        "Datacenter": "dc1",
        "Connect": {"Native": True},
    },
}

# agent/checks: check ID -> HealthCheck.
AGENT_CHECKS: dict[str, JSON] = {c["CheckID"]: c for c in (SERF_N1, WEB1_CHECK)}


def fresh(value: Any) -> Any:
    """A deep copy, so a test cannot leak changes into another."""
    return copy.deepcopy(value)
