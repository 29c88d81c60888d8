"""Go struct shapes of catalog request bodies, for `consulpy.util.decode`.

Catalog registration is decoded leniently (unknown fields ignored: py-consul sends an extra
`WriteRequest` object), but with Go's type checks, so a wrong type still gets a 400.
"""

from __future__ import annotations

from consulpy.util.decode import ListOf, MapOf, Struct

SERVICE_ADDRESS = Struct("ServiceAddress", {"Address": "string", "Port": "int"}, strict=False)
WEIGHTS = Struct("Weights", {"Passing": "int", "Warning": "int"}, strict=False)

NODE_SERVICE = Struct(
    "NodeService",
    {
        "Kind": "string",
        "ID": "string",
        "Service": "string",
        "Tags": ListOf("string"),
        "Address": "string",
        "TaggedAddresses": MapOf(SERVICE_ADDRESS),
        "Meta": MapOf("string"),
        "Port": "int",
        "SocketPath": "string",
        "Weights": WEIGHTS,
        "EnableTagOverride": "bool",
        "Proxy": "any",
        "Connect": "any",
        "Locality": "any",
        "Namespace": "string",
        "Partition": "string",
        "PeerName": "string",
    },
    strict=False,
    aliases={"tagged_addresses": "TaggedAddresses", "enable_tag_override": "EnableTagOverride"},
)

CHECK_DEFINITION = Struct(
    "HealthCheckDefinition",
    {
        "HTTP": "string",
        "TLSServerName": "string",
        "TLSSkipVerify": "bool",
        "Header": MapOf(ListOf("string")),
        "Method": "string",
        "Body": "string",
        "DisableRedirects": "bool",
        "TCP": "string",
        "TCPUseTLS": "bool",
        "UDP": "string",
        "H2PING": "string",
        "H2PingUseTLS": "bool",
        "GRPC": "string",
        "GRPCUseTLS": "bool",
        "OSService": "string",
        "AliasNode": "string",
        "AliasService": "string",
        "ScriptArgs": ListOf("string"),
        "DockerContainerID": "string",
        "Shell": "string",
        "Interval": "duration",
        "Timeout": "duration",
        "TTL": "duration",
        "DeregisterCriticalServiceAfter": "duration",
        "IntervalDuration": "duration",
        "TimeoutDuration": "duration",
        "TTLDuration": "duration",
        "DeregisterCriticalServiceAfterDuration": "duration",
    },
    strict=False,
)

HEALTH_CHECK = Struct(
    "HealthCheck",
    {
        "Node": "string",
        "CheckID": "string",
        "Name": "string",
        "Status": "string",
        "Notes": "string",
        "Output": "string",
        "ServiceID": "string",
        "ServiceName": "string",
        "ServiceTags": ListOf("string"),
        "Type": "string",
        "Interval": "string",
        "Timeout": "string",
        "ExposedPort": "int",
        "Definition": CHECK_DEFINITION,
        "Namespace": "string",
        "Partition": "string",
        "PeerName": "string",
    },
    strict=False,
    aliases={"ID": "CheckID"},
)

REGISTER_REQUEST = Struct(
    "RegisterRequest",
    {
        "Datacenter": "string",
        "ID": "string",
        "Node": "string",
        "Address": "string",
        "TaggedAddresses": MapOf("string"),
        "NodeMeta": MapOf("string"),
        "Service": NODE_SERVICE,
        "Check": HEALTH_CHECK,
        "Checks": ListOf(HEALTH_CHECK),
        "SkipNodeUpdate": "bool",
        "Locality": "any",
        "Namespace": "string",
        "Partition": "string",
        "PeerName": "string",
    },
    strict=False,
)

DEREGISTER_REQUEST = Struct(
    "DeregisterRequest",
    {
        "Datacenter": "string",
        "Node": "string",
        "ServiceID": "string",
        "CheckID": "string",
        "Address": "string",
        "Namespace": "string",
        "Partition": "string",
        "PeerName": "string",
    },
    strict=False,
)
