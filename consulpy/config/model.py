"""The agent's configuration, fully resolved: defaults applied, sources merged, checked.

Everything here is read-only once built; the agent keeps one `AgentConfig` and passes its parts
to the layers that need them. Durations are float seconds. A port of -1 means "disabled", 0
"any free port". Service and check definitions stay dicts in Consul's API spelling because the
agent feeds them to the same validation as the HTTP registration endpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from consulpy.config.errors import ConfigError
from consulpy.config.netaddr import parse_ip, private_ipv4_addresses


@dataclass(frozen=True)
class Ports:
    """Listener ports; -1 disables a listener, 0 means "any free port" (chosen at bind)."""

    http: int
    https: int
    dns: int
    server: int
    serf_lan: int
    serf_wan: int
    grpc: int
    grpc_tls: int
    proxy_min_port: int
    proxy_max_port: int
    sidecar_min_port: int
    sidecar_max_port: int
    expose_min_port: int
    expose_max_port: int


@dataclass(frozen=True)
class Addresses:
    """Per-listener bind addresses overriding `client_addr` (space-separated IPs; for http and
    https also `unix:///path` sockets), or None."""

    http: str | None
    https: str | None
    dns: str | None
    grpc: str | None
    grpc_tls: str | None


@dataclass(frozen=True)
class UnixSockets:
    """Owner and mode given to every unix socket the agent listens on (`unix_sockets`):
    uid/gid resolved at load, mode as permission bits; None keeps what the OS gave."""

    uid: int | None
    gid: int | None
    mode: int | None


UNIX_PREFIX = "unix://"


@dataclass(frozen=True)
class Limits:
    """Request-size and connection limits; rpc_rate is requests/s (inf = unlimited)."""

    kv_max_value_size: int
    txn_max_req_len: int
    txn_max_ops: int
    http_max_conns_per_client: int
    rpc_max_conns_per_client: int
    rpc_rate: float
    rpc_max_burst: int
    rpc_handshake_timeout: float
    rpc_client_timeout: float
    https_handshake_timeout: float
    snapshot_max_size: int = 256 << 20  # bytes of a PUT /v1/snapshot archive


@dataclass(frozen=True)
class RaftLogStore:
    """raft_logstore: "wal" (the default) or "sqlite" (set as Consul's "boltdb": the previous
    store, kept for a rollback); the WAL's segment size."""

    backend: str
    segment_size_mb: int


@dataclass(frozen=True)
class Performance:
    """Raft timing scale (1 = fastest, Consul's production advice; 5 = default) and drains."""

    raft_multiplier: int
    leave_drain_time: float
    rpc_hold_timeout: float


@dataclass(frozen=True)
class Autopilot:
    """Server health and dead-server cleanup tuning (Consul's `autopilot` stanza)."""

    cleanup_dead_servers: bool
    last_contact_threshold: float
    max_trailing_logs: int
    min_quorum: int
    server_stabilization_time: float
    disable_upgrade_migration: bool
    upgrade_version_tag: str
    redundancy_zone_tag: str


@dataclass(frozen=True)
class ACL:
    """ACL system settings. `tokens` holds the configured tokens by Consul's names
    (initial_management, agent, agent_recovery, default, replication,
    config_file_service_registration); only those set appear."""

    enabled: bool
    default_policy: str
    down_policy: str
    enable_token_persistence: bool
    enable_key_list_policy: bool
    enable_token_replication: bool
    token_ttl: float
    policy_ttl: float
    role_ttl: float
    tokens: dict[str, str]

    @property
    def intention_default_allow(self) -> bool:
        """The mesh's decision when no intention matches: default_policy when ACLs are on,
        allow when they are off (as Consul). One rule for Envoy's RBAC and the HTTP checks."""
        return not self.enabled or self.default_policy != "deny"


@dataclass(frozen=True)
class TLSProtocol:
    """Effective TLS settings of one listener family (defaults applied)."""

    ca_file: str | None
    ca_path: str | None
    cert_file: str | None
    key_file: str | None
    verify_incoming: bool
    verify_outgoing: bool
    tls_min_version: str
    tls_cipher_suites: str | None


@dataclass(frozen=True)
class TLS:
    """Effective TLS for internal RPC (server port), resolved from `tls.internal_rpc`,
    `tls.defaults` and the legacy top-level keys; `https` and `grpc` likewise."""

    ca_file: str | None
    ca_path: str | None
    cert_file: str | None
    key_file: str | None
    verify_incoming: bool
    verify_outgoing: bool
    verify_server_hostname: bool
    tls_min_version: str
    tls_cipher_suites: str | None
    https: TLSProtocol
    grpc: TLSProtocol

    @property
    def enabled(self) -> bool:
        """Whether internal RPC should offer TLS at all (a certificate is configured)."""
        return bool(self.cert_file and self.key_file)


@dataclass(frozen=True)
class Connect:
    """Service mesh settings; ca_config keeps the user's keys as given."""

    enabled: bool
    ca_provider: str
    ca_config: dict[str, Any]
    enable_mesh_gateway_wan_federation: bool


@dataclass(frozen=True)
class UIConfig:
    enabled: bool
    dir: str | None
    content_path: str
    metrics_provider: str | None
    metrics_proxy: dict[str, Any]
    dashboard_url_templates: dict[str, str]
    # metrics_provider_options_json, parsed (a JSON object), handed to the UI as is
    metrics_provider_options: dict[str, Any]


@dataclass(frozen=True)
class Gossip:
    """SWIM/Lifeguard timing for one gossip pool (memberlist's names)."""

    gossip_nodes: int
    gossip_interval: float
    probe_interval: float
    probe_timeout: float
    suspicion_mult: int
    retransmit_mult: int


@dataclass(frozen=True)
class AgentConfig:
    """The complete, checked configuration of one agent."""

    # identity and role
    node_name: str
    node_id: str | None
    datacenter: str
    primary_datacenter: str
    domain: str
    alt_domain: str | None
    data_dir: str | None
    dev: bool
    server: bool
    bootstrap: bool
    bootstrap_expect: int
    server_name: str | None
    # network
    bind_addr: str
    client_addr: str
    client_addrs: list[str]
    advertise_addr: str | None
    advertise_addr_wan: str | None
    # The `lan_ipv4`/`lan_ipv6`/`wan_ipv4`/`wan_ipv6` tagged addresses, when set explicitly.
    advertise_addr_ipv4: str | None
    advertise_addr_ipv6: str | None
    advertise_addr_wan_ipv4: str | None
    advertise_addr_wan_ipv6: str | None
    serf_lan_bind: str | None
    serf_wan_bind: str | None
    addresses: Addresses
    unix_sockets: UnixSockets
    ports: Ports
    tagged_addresses: dict[str, str]
    translate_wan_addrs: bool
    # joining and leaving
    retry_join: list[str]
    start_join: list[str]
    retry_join_wan: list[str]
    start_join_wan: list[str]
    retry_interval: float
    retry_interval_wan: float
    retry_max: int
    retry_max_wan: int
    rejoin_after_leave: bool
    leave_on_terminate: bool
    skip_leave_on_interrupt: bool
    reconnect_timeout: float
    reconnect_timeout_wan: float
    advertise_reconnect_timeout: float
    # gossip
    encrypt: str | None
    encrypt_verify_incoming: bool
    encrypt_verify_outgoing: bool
    disable_keyring_file: bool
    gossip_lan: Gossip
    gossip_wan: Gossip
    serf_lan_allowed_cidrs: list[str]
    serf_wan_allowed_cidrs: list[str]
    # logging
    log_level: str
    log_sublevels: dict[str, str]
    log_json: bool
    log_file: str | None
    log_rotate_bytes: int
    log_rotate_duration: float
    log_rotate_max_files: int
    enable_syslog: bool
    event_loop: str  # auto | uvloop | asyncio (consulpy.util.eventloop), read at start only
    syslog_facility: str
    pid_file: str | None
    # agent features
    ui: bool
    ui_config: UIConfig
    node_meta: dict[str, str]
    # locality {region, zone} as Consul's Locality ({"Region", "Zone"}); None when unset
    locality: dict[str, str] | None
    enable_script_checks: bool
    enable_local_script_checks: bool
    enable_debug: bool
    enable_central_service_config: bool
    enable_agent_tls_for_checks: bool
    disable_update_check: bool
    disable_remote_exec: bool
    disable_anonymous_signature: bool
    disable_coordinates: bool
    sync_coordinate_interval_min: float
    sync_coordinate_rate_target: float
    coordinate_update_period: float  # consul.coordinate.update_period
    coordinate_update_batch_size: int
    coordinate_update_max_batches: int
    disable_host_node_id: bool
    disable_http_unprintable_char_filter: bool
    disable_kv_key_validation: bool
    check_update_interval: float
    check_output_max_size: int
    discard_check_output: bool
    session_ttl_min: float
    default_query_time: float
    max_query_time: float
    discovery_max_stale: float
    # servers
    raft_protocol: int
    raft_snapshot_threshold: int
    raft_snapshot_interval: float
    raft_trailing_logs: int
    raft_logstore: RaftLogStore
    server_rejoin_age_max: float
    limits: Limits
    performance: Performance
    autopilot: Autopilot
    acl: ACL
    tls: TLS
    connect: Connect
    # interfaces passed through as maps
    dns_config: dict[str, Any]
    recursors: list[str]
    http_config: dict[str, Any]
    telemetry: dict[str, Any]
    # definitions
    services: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    watches: list[dict[str, Any]]
    config_entries_bootstrap: list[dict[str, Any]]
    # where it came from
    config_files: list[str]
    warnings: list[str]
    # proxy config snapshots handed to xDS streams per second, across all (a token bucket)
    xds_update_max_per_second: float
    # -config-file/-config-dir as given, watched when auto_reload_config is set
    config_paths: list[str]
    config_format: str | None
    auto_reload_config: bool

    def effective_advertise(self) -> str:
        """The LAN address other agents reach us at: advertise_addr, else bind_addr, else the
        one private IPv4 of this host when bind_addr is 0.0.0.0 (as Consul decides)."""
        if self.advertise_addr:
            return self.advertise_addr
        if not parse_ip(self.bind_addr).is_unspecified:
            return self.bind_addr
        if parse_ip(self.bind_addr).version == 6:
            raise ConfigError(
                "Cannot pick an advertise address for bind_addr '::'; set advertise_addr"
            )
        found = private_ipv4_addresses()
        if not found:
            raise ConfigError("No private IPv4 address found; set bind_addr or advertise_addr")
        if len(found) > 1:
            raise ConfigError(
                "Multiple private IPv4 addresses found. Please configure one with "
                "'bind' and/or 'advertise'."
            )
        return found[0]

    def effective_advertise_wan(self) -> str:
        """The WAN address: advertise_addr_wan, else the LAN advertise address."""
        return self.advertise_addr_wan or self.effective_advertise()

    def _client_listeners(self, override: str | None, port: int) -> list[tuple[str, int]]:
        if port < 0:
            return []
        hosts = override.split() if override else self.client_addrs
        return [(host, port) for host in hosts if not host.startswith(UNIX_PREFIX)]

    def http_unix_paths(self) -> list[str]:
        """Unix socket paths the HTTP API listens on (`addresses.http = "unix:///path"`)."""
        return _unix_paths(self.addresses.http) if self.ports.http >= 0 else []

    def https_unix_paths(self) -> list[str]:
        return _unix_paths(self.addresses.https) if self.ports.https >= 0 else []

    def http_addresses(self) -> list[tuple[str, int]]:
        """(ip, port) pairs the HTTP API listens on (port 0: any free port); [] when disabled."""
        return self._client_listeners(self.addresses.http, self.ports.http)

    def https_addresses(self) -> list[tuple[str, int]]:
        return self._client_listeners(self.addresses.https, self.ports.https)

    def dns_addresses(self) -> list[tuple[str, int]]:
        """(ip, port) pairs for DNS (both UDP and TCP)."""
        return self._client_listeners(self.addresses.dns, self.ports.dns)

    def grpc_addresses(self) -> list[tuple[str, int]]:
        return self._client_listeners(self.addresses.grpc, self.ports.grpc)

    def grpc_tls_addresses(self) -> list[tuple[str, int]]:
        return self._client_listeners(self.addresses.grpc_tls, self.ports.grpc_tls)

    def rpc_bind(self) -> tuple[str, int]:
        """Where the server RPC/Raft listener binds."""
        return (self.bind_addr, self.ports.server)

    def serf_lan_bind_address(self) -> tuple[str, int]:
        return (self.serf_lan_bind or self.bind_addr, self.ports.serf_lan)

    def serf_wan_bind_address(self) -> tuple[str, int] | None:
        """None when the WAN pool is disabled (ports.serf_wan = -1)."""
        if self.ports.serf_wan < 0:
            return None
        return (self.serf_wan_bind or self.bind_addr, self.ports.serf_wan)

    def as_debug_dict(self) -> dict[str, Any]:
        """A JSON-able view for /v1/agent/self's DebugConfig: Consul-style names, secrets hidden."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[_DEBUG_NAMES.get(f.name, _pascal(f.name))] = _debug_value(f.name, value)
        for name in ("http", "https", "dns", "grpc", "grpc_tls", "server", "serf_lan", "serf_wan"):
            out[_PORT_DEBUG_NAMES[name]] = getattr(self.ports, name)
        out["ACLsEnabled"] = self.acl.enabled
        out["ConnectEnabled"] = self.connect.enabled
        # As in Consul, the resolved addresses (what peers are told), not only what was set.
        try:
            out["AdvertiseAddrLAN"] = self.effective_advertise()
            out["AdvertiseAddrWAN"] = self.effective_advertise_wan()
        except ConfigError:
            pass  # the agent refused to start with this configuration anyway
        return out


_ACRONYMS = {
    "id": "ID",
    "acl": "ACL",
    "acls": "ACLs",
    "http": "HTTP",
    "https": "HTTPS",
    "dns": "DNS",
    "tls": "TLS",
    "rpc": "RPC",
    "ttl": "TTL",
    "ui": "UI",
    "grpc": "GRPC",
    "wan": "WAN",
    "lan": "LAN",
    "kv": "KV",
    "ca": "CA",
    "ip": "IP",
    "txn": "Txn",
    "url": "URL",
    "cidrs": "CIDRs",
    "json": "JSON",
    "pid": "Pid",
}
_DEBUG_NAMES = {
    "server": "ServerMode",
    "dev": "DevMode",
    "advertise_addr": "AdvertiseAddrLAN",
    "advertise_addr_wan": "AdvertiseAddrWAN",
    "retry_join": "RetryJoinLAN",
    "retry_join_wan": "RetryJoinWAN",
    "start_join": "StartJoinAddrsLAN",
    "start_join_wan": "StartJoinAddrsWAN",
    "retry_interval": "RetryJoinIntervalLAN",
    "retry_interval_wan": "RetryJoinIntervalWAN",
    "retry_max": "RetryJoinMaxAttemptsLAN",
    "retry_max_wan": "RetryJoinMaxAttemptsWAN",
    "reconnect_timeout": "ReconnectTimeoutLAN",
    "reconnect_timeout_wan": "ReconnectTimeoutWAN",
    "encrypt": "EncryptKey",
    "enable_script_checks": "EnableRemoteScriptChecks",
    "leave_on_terminate": "LeaveOnTerm",
    "skip_leave_on_interrupt": "SkipLeaveOnInt",
    "domain": "DNSDomain",
    "alt_domain": "DNSAltDomain",
    "recursors": "DNSRecursors",
    "serf_lan_bind": "SerfBindAddrLAN",
    "serf_wan_bind": "SerfBindAddrWAN",
    "serf_lan_allowed_cidrs": "SerfAllowedCIDRsLAN",
    "serf_wan_allowed_cidrs": "SerfAllowedCIDRsWAN",
    "config_entries_bootstrap": "ConfigEntryBootstrap",
    "dns_config": "DNSConfig",
    "ui": "UIEnabled",
}
_PORT_DEBUG_NAMES = {
    "http": "HTTPPort",
    "https": "HTTPSPort",
    "dns": "DNSPort",
    "grpc": "GRPCPort",
    "grpc_tls": "GRPCTLSPort",
    "server": "ServerPort",
    "serf_lan": "SerfPortLAN",
    "serf_wan": "SerfPortWAN",
}
_SECRET_NAMES = {"encrypt", "tokens", "ca_config", "token", "private_key", "root_cert"}


def _pascal(name: str) -> str:
    return "".join(_ACRONYMS.get(part, part.capitalize()) for part in name.split("_"))


def _debug_value(name: str, value: Any) -> Any:
    if name.lower() in _SECRET_NAMES and value:
        if isinstance(value, dict):
            return {k: "hidden" for k in value}
        return "hidden"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _pascal(f.name): _debug_value(f.name, getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {str(k): _debug_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_debug_value("", v) for v in value]
    return value


def _unix_paths(override: str | None) -> list[str]:
    parts = (override or "").split()
    return [a.removeprefix(UNIX_PREFIX) for a in parts if a.startswith(UNIX_PREFIX)]
