"""Schemas: field names and JSON shape of every kind as Consul prints them."""

from __future__ import annotations

from consulpy.connect.config_entries.decode import (
    ANY_MAP,
    BOOL,
    DURATION,
    DURATION_NS,
    FLOAT,
    INT,
    STR,
    STR_LIST,
    STR_MAP,
    TIME,
    UINT,
    UINT_LIST,
    F,
    _List,
    _Map,
    _name_fields,
    _Obj,
)

_MESH_GATEWAY = _Obj(F("Mode", STR))
_TPROXY = _Obj(F("OutboundListenerPort", INT), F("DialedDirectly", BOOL))
_EXPOSE = _Obj(
    F("Checks", BOOL),
    F(
        "Paths",
        _List(
            _Obj(
                F("ListenerPort", INT),
                F("Path", STR),
                F("LocalPathPort", INT),
                F("Protocol", STR),
                F("ParsedFromCheck", BOOL),
            )
        ),
    ),
)
_ACCESS_LOGS = _Obj(
    F("Enabled", BOOL),
    F("DisableListenerLogs", BOOL),
    F("Type", STR),
    F("Path", STR),
    F("JSONFormat", STR),
    F("TextFormat", STR),
)
_ENVOY_EXTENSIONS = _List(
    _Obj(
        F("Name", STR, always=True),
        F("Required", BOOL, always=True),
        F("Arguments", ANY_MAP, always=True),
        F("ConsulVersion", STR, always=True),
        F("EnvoyVersion", STR, always=True),
    )
)
_PASSIVE_HEALTH_CHECK = _Obj(
    F("Interval", DURATION_NS),
    F("MaxFailures", UINT),
    F("EnforcingConsecutive5xx", UINT, alias="enforcing_consecutive_5xx"),
    F("MaxEjectionPercent", UINT),
    F("BaseEjectionTime", DURATION_NS),
)
_LIMITS = _Obj(
    F("MaxConnections", INT), F("MaxPendingRequests", INT), F("MaxConcurrentRequests", INT)
)
_UPSTREAM_CONFIG = _Obj(
    F("Name", STR),
    F("Peer", STR),
    F("EnvoyListenerJSON", STR),
    F("EnvoyClusterJSON", STR),
    F("Protocol", STR),
    F("ConnectTimeoutMs", INT),
    F("Limits", _LIMITS),
    F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
    F("MeshGateway", _MESH_GATEWAY),
    F("BalanceOutboundConnections", STR),
)
_HEADER_MODIFIERS = _Obj(F("Add", STR_MAP), F("Set", STR_MAP), F("Remove", STR_LIST))

PROXY_DEFAULTS_SCHEMA = _Obj(
    *_name_fields(),
    F("Config", ANY_MAP, always=True),
    F("Mode", STR),
    F("TransparentProxy", _TPROXY, always=True),
    F("MutualTLSMode", STR),
    F("MeshGateway", _MESH_GATEWAY, always=True),
    F("Expose", _EXPOSE, always=True),
    F("AccessLogs", _ACCESS_LOGS),
    F("EnvoyExtensions", _ENVOY_EXTENSIONS),
    F("Meta", STR_MAP),
)

SERVICE_DEFAULTS_SCHEMA = _Obj(
    *_name_fields(),
    F("Protocol", STR, always=True),
    F("Mode", STR),
    F("TransparentProxy", _TPROXY, always=True),
    F("MutualTLSMode", STR),
    F("MeshGateway", _MESH_GATEWAY, always=True),
    F("Expose", _EXPOSE, always=True),
    F("ExternalSNI", STR),
    F(
        "UpstreamConfig",
        _Obj(F("Overrides", _List(_UPSTREAM_CONFIG)), F("Defaults", _UPSTREAM_CONFIG)),
    ),
    F("Destination", _Obj(F("Addresses", STR_LIST), F("Port", INT))),
    F("MaxInboundConnections", INT),
    F("LocalConnectTimeoutMs", INT),
    F("LocalRequestTimeoutMs", INT),
    F("BalanceInboundConnections", STR),
    F("EnvoyExtensions", _ENVOY_EXTENSIONS),
    F("Meta", STR_MAP),
)

_JWT_REQUIREMENT = _Obj(
    F(
        "Providers",
        _List(
            _Obj(
                F("Name", STR),
                F("VerifyClaims", _List(_Obj(F("Path", STR_LIST), F("Value", STR)))),
            )
        ),
    )
)
# One header condition, shared by L7 intention permissions and service-router matches.
_HEADER_MATCH = _Obj(
    F("Name", STR, always=True),
    F("Present", BOOL),
    F("Exact", STR),
    F("Prefix", STR),
    F("Suffix", STR),
    F("Regex", STR),
    F("Invert", BOOL),
)
_INTENTION_HTTP = _Obj(
    F("PathExact", STR),
    F("PathPrefix", STR),
    F("PathRegex", STR),
    F("Header", _List(_HEADER_MATCH)),
    F("Methods", STR_LIST),
)
INTENTION_PERMISSION_SCHEMA = _Obj(
    F("Action", STR, always=True), F("HTTP", _INTENTION_HTTP), F("JWT", _JWT_REQUIREMENT)
)
INTENTION_SOURCE_SCHEMA = _Obj(
    F("Name", STR, always=True),
    F("Action", STR),
    F("Permissions", _List(INTENTION_PERMISSION_SCHEMA)),
    F("Precedence", INT, always=True),
    F("LegacyID", STR, alias="legacy_id"),
    F("Type", STR, always=True),
    F("Description", STR),
    F("LegacyMeta", STR_MAP),
    F("LegacyCreateTime", TIME),
    F("LegacyUpdateTime", TIME),
    F("Peer", STR),
    F("SamenessGroup", STR),
)
# The body of the intentions API endpoints (Consul's structs.Intention), decoded leniently.
INTENTION_BODY_SCHEMA = _Obj(
    F("ID", STR),
    F("Description", STR),
    F("SourcePeer", STR),
    F("SourceSamenessGroup", STR),
    F("SourcePartition", STR),
    F("SourceNS", STR),
    F("SourceName", STR),
    F("DestinationPartition", STR),
    F("DestinationNS", STR),
    F("DestinationName", STR),
    F("SourceType", STR),
    F("Action", STR),
    F("Permissions", _List(INTENTION_PERMISSION_SCHEMA)),
    F("Meta", STR_MAP),
)
SERVICE_INTENTIONS_SCHEMA = _Obj(
    *_name_fields(),
    F("Sources", _List(INTENTION_SOURCE_SCHEMA), always=True),
    F("JWT", _JWT_REQUIREMENT),
    F("Meta", STR_MAP),
)

_ROUTE_HTTP_MATCH = _Obj(
    F("PathExact", STR),
    F("PathPrefix", STR),
    F("PathRegex", STR),
    F("Header", _List(_HEADER_MATCH)),
    F(
        "QueryParam",
        _List(
            _Obj(
                F("Name", STR, always=True),
                F("Present", BOOL),
                F("Exact", STR),
                F("Regex", STR),
            )
        ),
    ),
    F("Methods", STR_LIST),
)
_ROUTE_DESTINATION = _Obj(
    F("Service", STR),
    F("ServiceSubset", STR),
    F("Namespace", STR),
    F("Partition", STR),
    F("PrefixRewrite", STR),
    F("RequestTimeout", DURATION),
    F("IdleTimeout", DURATION),
    F("NumRetries", UINT),
    F("RetryOnConnectFailure", BOOL),
    F("RetryOn", STR_LIST),
    F("RetryOnStatusCodes", UINT_LIST),
    F("RequestHeaders", _HEADER_MODIFIERS),
    F("ResponseHeaders", _HEADER_MODIFIERS),
)
SERVICE_ROUTER_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Routes",
        _List(
            _Obj(
                F("Match", _Obj(F("HTTP", _ROUTE_HTTP_MATCH))), F("Destination", _ROUTE_DESTINATION)
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)

SERVICE_SPLITTER_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Splits",
        _List(
            _Obj(
                F("Weight", FLOAT, always=True),
                F("Service", STR),
                F("ServiceSubset", STR),
                F("Namespace", STR),
                F("Partition", STR),
                F("RequestHeaders", _HEADER_MODIFIERS),
                F("ResponseHeaders", _HEADER_MODIFIERS),
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)

_TARGET_FIELDS = (
    F("Service", STR),
    F("ServiceSubset", STR),
    F("Namespace", STR),
    F("Partition", STR),
    F("Datacenter", STR),
    F("Peer", STR),
)
SERVICE_RESOLVER_SCHEMA = _Obj(
    *_name_fields(),
    F("DefaultSubset", STR),
    F("Subsets", _Map(_Obj(F("Filter", STR), F("OnlyPassing", BOOL)))),
    F("Redirect", _Obj(*_TARGET_FIELDS)),
    F(
        "Failover",
        _Map(
            _Obj(
                F("Service", STR),
                F("ServiceSubset", STR),
                F("Namespace", STR),
                F("Datacenters", STR_LIST),
                F("Targets", _List(_Obj(*_TARGET_FIELDS))),
                F("Policy", _Obj(F("Mode", STR), F("Regions", STR_LIST))),
            )
        ),
    ),
    F("ConnectTimeout", DURATION),
    F("RequestTimeout", DURATION),
    F(
        "LoadBalancer",
        _Obj(
            F("Policy", STR),
            F("RingHashConfig", _Obj(F("MinimumRingSize", UINT), F("MaximumRingSize", UINT))),
            F("LeastRequestConfig", _Obj(F("ChoiceCount", UINT))),
            F(
                "HashPolicies",
                _List(
                    _Obj(
                        F("Field", STR),
                        F("FieldValue", STR),
                        F(
                            "CookieConfig",
                            _Obj(F("Session", BOOL), F("TTL", DURATION_NS), F("Path", STR)),
                        ),
                        F("SourceIP", BOOL, alias="source_ip"),
                        F("Terminal", BOOL),
                    )
                ),
            ),
        ),
    ),
    F("Meta", STR_MAP),
)

_MESH_DIRECTIONAL_TLS = _Obj(
    F("TLSMinVersion", STR), F("TLSMaxVersion", STR), F("CipherSuites", STR_LIST)
)
MESH_SCHEMA = _Obj(
    *_name_fields(),
    F("TransparentProxy", _Obj(F("MeshDestinationsOnly", BOOL, always=True)), always=True),
    F("AllowEnablingPermissiveMutualTLS", BOOL),
    F("ValidateClusters", BOOL),
    F("TLS", _Obj(F("Incoming", _MESH_DIRECTIONAL_TLS), F("Outgoing", _MESH_DIRECTIONAL_TLS))),
    F(
        "HTTP",
        _Obj(F("SanitizeXForwardedClientCert", BOOL, always=True), F("Incoming", ANY_MAP)),
    ),
    F("Peering", _Obj(F("PeerThroughMeshGateways", BOOL, always=True))),
    F("Meta", STR_MAP),
)

_GATEWAY_SDS = _Obj(F("ClusterName", STR), F("CertResource", STR))
_GATEWAY_TLS = _Obj(
    F("Enabled", BOOL, always=True),
    F("SDS", _GATEWAY_SDS),
    F("TLSMinVersion", STR),
    F("TLSMaxVersion", STR),
    F("CipherSuites", STR_LIST),
)
INGRESS_GATEWAY_SCHEMA = _Obj(
    *_name_fields(),
    F("TLS", _GATEWAY_TLS, always=True),
    F(
        "Listeners",
        _List(
            _Obj(
                F("Port", INT, always=True),
                F("Protocol", STR, always=True),
                F("TLS", _GATEWAY_TLS),
                F(
                    "Services",
                    _List(
                        _Obj(
                            F("Name", STR, always=True),
                            F("Hosts", STR_LIST, always=True),
                            F("TLS", _Obj(F("SDS", _GATEWAY_SDS))),
                            F("RequestHeaders", _HEADER_MODIFIERS),
                            F("ResponseHeaders", _HEADER_MODIFIERS),
                            F("MaxConnections", UINT),
                            F("MaxPendingRequests", UINT),
                            F("MaxConcurrentRequests", UINT),
                            F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
                            F("Meta", STR_MAP),
                        )
                    ),
                    always=True,
                ),
            )
        ),
        always=True,
    ),
    F(
        "Defaults",
        _Obj(
            F("MaxConnections", UINT, always=True),
            F("MaxPendingRequests", UINT, always=True),
            F("MaxConcurrentRequests", UINT, always=True),
            F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
        ),
    ),
    F("Meta", STR_MAP),
)

TERMINATING_GATEWAY_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Services",
        _List(
            _Obj(
                F("Name", STR),
                F("CAFile", STR, alias="ca_file"),
                F("CertFile", STR),
                F("KeyFile", STR),
                F("SNI", STR),
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)
