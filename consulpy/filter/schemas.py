"""Schemas of the objects Consul's filterable endpoints return, in their JSON wire shape.

Each mirrors the Go struct go-bexpr reflects on in Consul (agent/structs: Node, ServiceNode,
NodeService, HealthCheck, CheckServiceNode; api.AgentService), minus the fields Consul tags
`bexpr:"-"`: RaftIndex (CreateIndex/ModifyIndex), enterprise meta (Namespace/Partition), free
form maps (Proxy.Config, Upstreams[].Config, EnvoyExtensions[].Arguments), check
Definition, Connect.SidecarService. Those selectors are refused, as Consul refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping

from consulpy.filter.schema import ListOf, MapOf, SchemaType, struct

LOCALITY = struct(Region=str, Zone=str)
WEIGHTS = struct(Passing=int, Warning=int)
SERVICE_ADDRESS = struct(Address=str, Port=int)
MESH_GATEWAY = struct(Mode=str)
SERVICE_CONNECT = struct(Native=bool)

UPSTREAM = struct(
    DestinationType=str,
    DestinationNamespace=str,
    DestinationPartition=str,
    DestinationPeer=str,
    DestinationName=str,
    Datacenter=str,
    LocalBindAddress=str,
    LocalBindPort=int,
    LocalBindSocketPath=str,
    LocalBindSocketMode=str,
    MeshGateway=MESH_GATEWAY,
)

EXPOSE_PATH = struct(
    ListenerPort=int,
    Path=str,
    LocalPathPort=int,
    Protocol=str,
    ParsedFromCheck=bool,
)

PROXY = struct(
    EnvoyExtensions=ListOf(
        struct(Name=str, Required=bool, ConsulVersion=str, EnvoyVersion=str),
    ),
    DestinationServiceName=str,
    DestinationServiceID=str,
    LocalServiceAddress=str,
    LocalServicePort=int,
    LocalServiceSocketPath=str,
    Mode=str,
    Upstreams=ListOf(UPSTREAM),
    MeshGateway=MESH_GATEWAY,
    Expose=struct(Checks=bool, Paths=ListOf(EXPOSE_PATH)),
    TransparentProxy=struct(OutboundListenerPort=int, DialedDirectly=bool),
    AccessLogs=struct(
        Enabled=bool,
        DisableListenerLogs=bool,
        Type=str,
        Path=str,
        JSONFormat=str,
        TextFormat=str,
    ),
    MutualTLSMode=str,
)

# /v1/catalog/nodes elements; also the `Node` of a health/service entry.
NODE = struct(
    ID=str,
    Node=str,
    Address=str,
    Datacenter=str,
    TaggedAddresses=MapOf(str),
    Meta=MapOf(str),
    PeerName=str,
    Locality=LOCALITY,
)

# /v1/catalog/service/<s>, /v1/catalog/connect/<s> rows; /v1/catalog/services filters these.
CATALOG_SERVICE = struct(
    ID=str,
    Node=str,
    Address=str,
    Datacenter=str,
    TaggedAddresses=MapOf(str),
    NodeMeta=MapOf(str),
    ServiceKind=str,
    ServiceID=str,
    ServiceName=str,
    ServiceTags=ListOf(str),
    ServiceAddress=str,
    ServiceTaggedAddresses=MapOf(SERVICE_ADDRESS),
    ServiceWeights=WEIGHTS,
    ServiceMeta=MapOf(str),
    ServicePort=int,
    ServiceSocketPath=str,
    ServiceEnableTagOverride=bool,
    ServiceProxy=PROXY,
    ServiceConnect=SERVICE_CONNECT,
    ServiceLocality=LOCALITY,
    PeerName=str,
)

# Values of /v1/catalog/node/<n> `Services`, items of /v1/catalog/node-services/<n>
# `Services`, the `Service` of a health/service entry.
NODE_SERVICE = struct(
    Kind=str,
    ID=str,
    Service=str,
    Tags=ListOf(str),
    Address=str,
    TaggedAddresses=MapOf(SERVICE_ADDRESS),
    Meta=MapOf(str),
    Port=int,
    SocketPath=str,
    Weights=WEIGHTS,
    EnableTagOverride=bool,
    Proxy=PROXY,
    Connect=SERVICE_CONNECT,
    PeerName=str,
    Locality=LOCALITY,
)

# Values of /v1/agent/services (api.AgentService): the same filterable fields.
AGENT_SERVICE = NODE_SERVICE

# /v1/health/node/<n>, /v1/health/checks/<s>, /v1/health/state/<st> elements and the values of
# /v1/agent/checks; also the `Checks` of a health/service entry.
HEALTH_CHECK = struct(
    Node=str,
    CheckID=str,
    Name=str,
    Status=str,
    Notes=str,
    Output=str,
    ServiceID=str,
    ServiceName=str,
    ServiceTags=ListOf(str),
    Type=str,
    Interval=str,
    Timeout=str,
    ExposedPort=int,
    PeerName=str,
)

# /v1/health/service/<s> and /v1/health/connect/<s> elements.
SERVICE_ENTRY = struct(Node=NODE, Service=NODE_SERVICE, Checks=ListOf(HEALTH_CHECK))

# The schema each filterable endpoint (path after /v1/, without the trailing name) applies.
ENDPOINT_SCHEMAS: Mapping[str, SchemaType] = struct(
    **{
        "catalog/nodes": NODE,
        "catalog/services": CATALOG_SERVICE,
        "catalog/service": CATALOG_SERVICE,
        "catalog/connect": CATALOG_SERVICE,
        "catalog/node": NODE_SERVICE,
        "catalog/node-services": NODE_SERVICE,
        "health/node": HEALTH_CHECK,
        "health/checks": HEALTH_CHECK,
        "health/state": HEALTH_CHECK,
        "health/service": SERVICE_ENTRY,
        "health/connect": SERVICE_ENTRY,
        "agent/services": AGENT_SERVICE,
        "agent/checks": HEALTH_CHECK,
    }
)
