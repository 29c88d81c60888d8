"""Merged settings -> AgentConfig, with the checks that need more than one key.

Per-value checks (types, port ranges, address syntax) already ran per source. What remains are
Consul's cross-setting rules (bootstrap_expect needs server, data_dir needs to be set unless
-dev, ...) and the defaults that depend on other settings (leave_on_terminate, primary_datacenter,
...). Errors name the key and the source that set it.
"""

from __future__ import annotations

import grp
import json
import math
import os
import pwd
import re
import socket
from typing import Any

from consulpy.config import checks, unused
from consulpy.config import dns as dns_checks
from consulpy.config.errors import ConfigError
from consulpy.config.keys import AGENT
from consulpy.config.merge import Provenance
from consulpy.config.model import (
    ACL,
    TLS,
    Addresses,
    AgentConfig,
    Autopilot,
    Connect,
    Gossip,
    Limits,
    Performance,
    Ports,
    RaftLogStore,
    TLSProtocol,
    UIConfig,
    UnixSockets,
)
from consulpy.util import tlsnames

DEFAULTS_SOURCE = "built-in defaults"
DEV_SOURCE = "-dev defaults"

_DNS_INVALID = re.compile(r"[^A-Za-z0-9\-]+")
_NODE_NAME_INVALID = re.compile(r"[\s'\"`]")


class _Settings:
    """Read access to the merged tree plus error collection with provenance."""

    def __init__(self, merged: dict[str, Any], provenance: Provenance) -> None:
        self.merged = merged
        self.provenance = provenance
        self.errors: list[str] = []

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.merged
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def error(self, path: str, message: str) -> None:
        origin = self.provenance.origin(path)
        where = f" in {origin}" if origin else ""
        line = f"Invalid configuration{where}: {path}: {message}"
        if line not in self.errors:
            self.errors.append(line)


# Consul's floor for server_rejoin_age_max.
SERVER_REJOIN_AGE_MIN = 6 * 3600.0


def build_agent_config(
    merged: dict[str, Any],
    provenance: Provenance,
    *,
    dev: bool,
    config_files: list[str],
    warnings: list[str],
    config_paths: list[str] | None = None,
    config_format: str | None = None,
) -> AgentConfig:
    """Resolve and check the merged settings; ConfigError lists every problem found."""
    s = _Settings(merged, provenance)
    warnings = list(warnings)
    g = s.get

    server = bool(g("server"))
    bootstrap = bool(g("bootstrap"))
    if dev and not server and provenance.origin("bootstrap") == DEV_SOURCE:
        bootstrap = False  # a -dev client does not bootstrap anything
    expect = int(g("bootstrap_expect", 0))
    if expect == 1:
        bootstrap, expect = True, 0
        warnings.append("BootstrapExpect is set to 1; this is the same as Bootstrap mode.")
    _check_role(s, dev=dev, server=server, bootstrap=bootstrap, expect=expect, warnings=warnings)

    data_dir = g("data_dir") or None
    if data_dir is None and not dev:
        s.error("data_dir", "data_dir cannot be empty")
    if data_dir is not None and os.path.exists(data_dir) and not os.path.isdir(data_dir):
        s.error("data_dir", f"data_dir {data_dir!r} is not a directory")

    node_name = _node_name(s, warnings)
    datacenter = g("datacenter")
    client_addr = g("client_addr", "")
    client_addrs = client_addr.split()
    if not client_addrs:
        warnings.append(
            "client_addr is empty, client services (DNS, HTTP, HTTPS, GRPC) will not be "
            "listening for connections"
        )

    ports = Ports(**g("ports"))
    addresses = Addresses(
        **{k: g(f"addresses.{k}") for k in ("http", "https", "dns", "grpc", "grpc_tls")}
    )
    _check_ports(s, ports, addresses, client_addrs)
    unix_sockets = _unix_sockets(s)

    node_meta = dict(g("node_meta", {}))
    try:
        checks.node_meta_entry(node_meta)
    except ValueError as exc:
        s.error("node_meta", str(exc))

    enable_script_checks = bool(g("enable_script_checks"))
    enable_local = g("enable_local_script_checks")
    acl = _acl(s)
    if enable_script_checks and not acl.enabled and not g("http_config.allow_write_http_from"):
        warnings.append(
            "using enable-script-checks without ACLs and without allow_write_http_from is "
            "DANGEROUS, use enable-local-script-checks instead"
        )

    ui_enabled = bool(g("ui_config.enabled"))
    if not dev and ui_enabled and g("ui_config.dir"):
        s.error("ui_config.dir", "ui_config.enabled and ui_config.dir cannot both be set")
    metrics_proxy = _metrics_proxy(s, g("ui_config.metrics_proxy", {}))
    metrics_options = _metrics_provider_options(s, warnings)

    _check_unused_keys(s, warnings)

    tls = _tls(s)
    connect = Connect(
        enabled=bool(g("connect.enabled")),
        ca_provider=g("connect.ca_provider") or "consul",
        ca_config=dict(g("connect.ca_config", {})),
        enable_mesh_gateway_wan_federation=bool(g("connect.enable_mesh_gateway_wan_federation")),
    )
    if connect.enable_mesh_gateway_wan_federation and not connect.enabled:
        s.error(
            "connect.enable_mesh_gateway_wan_federation",
            "'connect.enable_mesh_gateway_wan_federation=true' requires 'connect.enabled=true'",
        )

    if server and g("advertise_reconnect_timeout"):
        s.error(
            "advertise_reconnect_timeout",
            "advertise_reconnect_timeout can only be used on a client",
        )
    rejoin_age_max = g("server_rejoin_age_max")
    if rejoin_age_max < SERVER_REJOIN_AGE_MIN:
        # As Consul: a shorter value would refuse restarts after routine maintenance.
        warnings.append(
            f"server_rejoin_age_max {rejoin_age_max:g}s is below the minimum of 6h; using 6h"
        )
        rejoin_age_max = SERVER_REJOIN_AGE_MIN

    bootstrap_entries = _bootstrap_entries(s)
    domain, alt_domain, recursors = _dns(s)
    warnings.extend(dns_checks.dns_config_warnings(dict(g("dns_config", {}))))
    if s.errors:
        raise ConfigError(s.errors)

    return AgentConfig(
        node_name=node_name,
        node_id=g("node_id") or None,
        datacenter=datacenter,
        primary_datacenter=g("primary_datacenter") or datacenter,
        domain=domain,
        alt_domain=alt_domain,
        data_dir=data_dir,
        dev=dev,
        server=server,
        bootstrap=bootstrap,
        bootstrap_expect=expect,
        server_name=g("server_name") or None,
        bind_addr=g("bind_addr"),
        client_addr=" ".join(client_addrs),
        client_addrs=client_addrs,
        advertise_addr=g("advertise_addr"),
        advertise_addr_wan=g("advertise_addr_wan"),
        advertise_addr_ipv4=g("advertise_addr_ipv4") or None,
        advertise_addr_ipv6=g("advertise_addr_ipv6") or None,
        advertise_addr_wan_ipv4=g("advertise_addr_wan_ipv4") or None,
        advertise_addr_wan_ipv6=g("advertise_addr_wan_ipv6") or None,
        serf_lan_bind=g("serf_lan"),
        serf_wan_bind=g("serf_wan"),
        addresses=addresses,
        unix_sockets=unix_sockets,
        ports=ports,
        tagged_addresses=dict(g("tagged_addresses", {})),
        translate_wan_addrs=bool(g("translate_wan_addrs")),
        retry_join=list(g("retry_join", [])),
        start_join=list(g("start_join", [])),
        retry_join_wan=list(g("retry_join_wan", [])),
        start_join_wan=list(g("start_join_wan", [])),
        retry_interval=g("retry_interval"),
        retry_interval_wan=g("retry_interval_wan"),
        retry_max=g("retry_max"),
        retry_max_wan=g("retry_max_wan"),
        rejoin_after_leave=bool(g("rejoin_after_leave")),
        leave_on_terminate=_bool_or(g("leave_on_terminate"), not server),
        skip_leave_on_interrupt=_bool_or(g("skip_leave_on_interrupt"), server),
        reconnect_timeout=g("reconnect_timeout"),
        reconnect_timeout_wan=g("reconnect_timeout_wan"),
        advertise_reconnect_timeout=g("advertise_reconnect_timeout", 0.0),
        encrypt=g("encrypt") or None,
        encrypt_verify_incoming=bool(g("encrypt_verify_incoming")),
        encrypt_verify_outgoing=bool(g("encrypt_verify_outgoing")),
        disable_keyring_file=bool(g("disable_keyring_file")),
        gossip_lan=Gossip(**g("gossip_lan")),
        gossip_wan=Gossip(**g("gossip_wan")),
        serf_lan_allowed_cidrs=list(g("serf_lan_allowed_cidrs", [])),
        serf_wan_allowed_cidrs=list(g("serf_wan_allowed_cidrs", [])),
        locality=_locality(g("locality", {})),
        log_level=g("log_level"),
        log_sublevels=dict(g("log_sublevels", {})),
        log_json=bool(g("log_json")),
        log_file=g("log_file") or None,
        log_rotate_bytes=g("log_rotate_bytes"),
        log_rotate_duration=g("log_rotate_duration"),
        log_rotate_max_files=g("log_rotate_max_files"),
        enable_syslog=bool(g("enable_syslog")),
        event_loop=g("event_loop"),
        syslog_facility=g("syslog_facility"),
        pid_file=g("pid_file") or None,
        ui=ui_enabled,
        ui_config=UIConfig(
            enabled=ui_enabled,
            dir=g("ui_config.dir") or None,
            content_path="/" + g("ui_config.content_path").strip("/") + "/"
            if g("ui_config.content_path").strip("/")
            else "/ui/",
            metrics_provider=g("ui_config.metrics_provider") or None,
            metrics_proxy=metrics_proxy,
            dashboard_url_templates=dict(g("ui_config.dashboard_url_templates", {})),
            metrics_provider_options=metrics_options,
        ),
        node_meta=node_meta,
        enable_script_checks=enable_script_checks,
        enable_local_script_checks=_bool_or(enable_local, enable_script_checks),
        enable_debug=bool(g("enable_debug")),
        enable_central_service_config=bool(g("enable_central_service_config")),
        enable_agent_tls_for_checks=bool(g("enable_agent_tls_for_checks")),
        disable_update_check=bool(g("disable_update_check")),
        disable_remote_exec=bool(g("disable_remote_exec")),
        disable_anonymous_signature=bool(g("disable_anonymous_signature")),
        disable_coordinates=bool(g("disable_coordinates")),
        sync_coordinate_interval_min=g("sync_coordinate_interval_min"),
        sync_coordinate_rate_target=float(g("sync_coordinate_rate_target")),
        coordinate_update_period=g("consul.coordinate.update_period"),
        coordinate_update_batch_size=g("consul.coordinate.update_batch_size"),
        coordinate_update_max_batches=g("consul.coordinate.update_max_batches"),
        disable_host_node_id=bool(g("disable_host_node_id")),
        disable_http_unprintable_char_filter=bool(g("disable_http_unprintable_char_filter")),
        disable_kv_key_validation=bool(g("disable_kv_key_validation")),
        check_update_interval=g("check_update_interval"),
        check_output_max_size=g("check_output_max_size"),
        discard_check_output=bool(g("discard_check_output")),
        session_ttl_min=g("session_ttl_min"),
        default_query_time=g("default_query_time"),
        max_query_time=g("max_query_time"),
        discovery_max_stale=g("discovery_max_stale"),
        raft_protocol=g("raft_protocol"),
        raft_snapshot_threshold=g("raft_snapshot_threshold"),
        raft_snapshot_interval=g("raft_snapshot_interval"),
        raft_trailing_logs=g("raft_trailing_logs"),
        raft_logstore=RaftLogStore(
            backend="sqlite" if g("raft_logstore.backend") == "boltdb" else "wal",
            segment_size_mb=g("raft_logstore.wal.segment_size_mb"),
        ),
        server_rejoin_age_max=rejoin_age_max,
        limits=_limits(s),
        performance=Performance(**g("performance")),
        autopilot=Autopilot(**g("autopilot")),
        acl=acl,
        tls=tls,
        connect=connect,
        dns_config=dict(g("dns_config", {})),
        recursors=recursors,
        http_config=dict(g("http_config", {})),
        telemetry=dict(g("telemetry", {})),
        services=list(g("services", [])),
        checks=list(g("checks", [])),
        watches=list(g("watches", [])),
        config_entries_bootstrap=bootstrap_entries,
        config_files=list(config_files),
        config_paths=list(config_paths or []),
        config_format=config_format or None,
        auto_reload_config=bool(g("auto_reload_config")),
        xds_update_max_per_second=float(g("xds.update_max_per_second")),
        warnings=warnings,
    )


def _metrics_provider_options(s: _Settings, warnings: list[str]) -> dict[str, Any]:
    """ui_config.metrics_provider_options_json as a dict, and a warning when the provider is
    one the consulpy UI cannot draw."""
    provider = s.get("ui_config.metrics_provider") or ""
    if provider and provider != "prometheus":
        warnings.append(
            f"ui_config.metrics_provider {provider!r}: the consulpy UI draws metrics for "
            '"prometheus" only (custom providers need ui_config.metrics_provider_files, which '
            "consulpy does not load); the UI shows no metrics"
        )
    raw = s.get("ui_config.metrics_provider_options_json") or ""
    return dict(json.loads(raw)) if raw.strip() else {}  # checked at parse: an object


METRICS_PROXY_ALLOWLIST = ["/api/v1/query_range", "/api/v1/query"]


def _metrics_proxy(s: _Settings, raw: Any) -> dict[str, Any]:
    """`ui_config.metrics_proxy` checked and completed: base_url an http(s) URL, the path
    allowlist (Prometheus' query paths by default) absolute paths, add_headers name/value
    pairs."""
    from urllib.parse import urlsplit

    path = "ui_config.metrics_proxy"
    if isinstance(raw, list):  # an HCL block
        raw = raw[0] if len(raw) == 1 else {}
    if not isinstance(raw, dict):
        s.error(path, "must be an object")
        return {}
    for key in sorted(set(raw) - {"base_url", "path_allowlist", "add_headers"}):
        s.error(f"{path}.{key}", "unknown key")
    base = raw.get("base_url") or ""
    if base:
        parts = urlsplit(str(base))
        if not isinstance(base, str) or parts.scheme not in ("http", "https") or not parts.netloc:
            s.error(f"{path}.base_url", f"must be a valid http or https URL, got {base!r}")
    allow = raw.get("path_allowlist", METRICS_PROXY_ALLOWLIST)
    if not isinstance(allow, list) or not all(isinstance(p, str) for p in allow):
        s.error(f"{path}.path_allowlist", "must be a list of paths")
        allow = []
    for item in allow:
        if not item.startswith("/"):
            s.error(f"{path}.path_allowlist", f"path {item!r} is not an absolute path")
    headers = raw.get("add_headers") or []
    good = isinstance(headers, list) and all(
        isinstance(h, dict)
        and set(h) <= {"name", "value"}
        and isinstance(h.get("name"), str)
        and h["name"]
        and isinstance(h.get("value", ""), str)
        for h in headers
    )
    if not good:
        s.error(f"{path}.add_headers", "must be a list of {name, value} objects")
        headers = []
    return {
        "base_url": base,
        "path_allowlist": list(allow),
        "add_headers": [{"name": h["name"], "value": h.get("value", "")} for h in headers],
    }


def _dns(s: _Settings) -> tuple[str, str | None, list[str]]:
    """Normalised domain and alt_domain, checked recursors; errors for unusable DNS settings."""
    domain = "consul."
    try:
        domain = dns_checks.normalise_domain(s.get("domain") or "consul.")
    except ValueError as exc:
        s.error("domain", str(exc))
    alt_domain = None
    if s.get("alt_domain"):
        try:
            alt_domain = dns_checks.normalise_domain(s.get("alt_domain"))
        except ValueError as exc:
            s.error("alt_domain", str(exc))
        if alt_domain == domain:
            s.error("alt_domain", "alt_domain must differ from domain")
    # Kept as written (as Consul's runtime config does); the DNS server normalises them.
    recursors = list(s.get("recursors", []))
    try:
        dns_checks.normalise_recursors(recursors)
    except ValueError as exc:
        s.error("recursors", str(exc))
    for key, message in dns_checks.check_dns_config(dict(s.get("dns_config", {}))):
        s.error(key, message)
    return domain, alt_domain, recursors


def _bootstrap_entries(s: _Settings) -> list[dict[str, Any]]:
    """`config_entries.bootstrap`, each decoded and validated as `consulpy config write` would
    (so a bad entry stops the agent at start, not the leader at election)."""
    from consulpy.connect import config_entries as ce

    out: list[dict[str, Any]] = []
    for i, raw in enumerate(s.get("config_entries.bootstrap", None) or []):
        path = f"config_entries.bootstrap[{i}]"
        if not isinstance(raw, dict):
            s.error(path, "must be an object")
            continue
        try:
            out.append(ce.normalize(raw))
        except ce.EntryError as exc:
            s.error(path, str(exc))
    return out


def _bool_or(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _check_role(
    s: _Settings, *, dev: bool, server: bool, bootstrap: bool, expect: int, warnings: list[str]
) -> None:
    """Consul's rules for bootstrap, bootstrap_expect and server, in Consul's order."""
    if bootstrap and not server:
        s.error("bootstrap", "'bootstrap = true' requires 'server = true'")
    if expect > 0 and not server:
        s.error("bootstrap_expect", "'bootstrap_expect > 0' requires 'server = true'")
    elif expect > 0 and dev:
        s.error("bootstrap_expect", "'bootstrap_expect > 0' not allowed in dev mode")
    elif expect > 0 and bootstrap:
        s.error(
            "bootstrap_expect",
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        )
    if server and not dev and not bootstrap and expect == 2:
        warnings.append(
            "bootstrap_expect = 2: A cluster with 2 servers will provide no failure tolerance."
        )
    if server and not bootstrap and expect > 2 and expect % 2 == 0:
        warnings.append(
            "bootstrap_expect is even number: A cluster with an even number of servers does "
            "not achieve optimum fault tolerance."
        )
    if server and bootstrap and expect == 0 and not dev:
        warnings.append("bootstrap = true: do not enable unless necessary")


def _node_name(s: _Settings, warnings: list[str]) -> str:
    name = (s.get("node_name") or socket.gethostname() or "").strip()
    if not name:
        s.error("node_name", "node_name cannot be empty")
        return name
    if _DNS_INVALID.search(name):
        warnings.append(
            f"Node name {name!r} will not be discoverable via DNS due to invalid characters. "
            "Valid characters include all alpha-numerics and dashes."
        )
    elif len(name) > 63:
        warnings.append(
            f"Node name {name!r} will not be discoverable via DNS due to it being too long. "
            "Valid lengths are between 1 and 63 bytes."
        )
    if _NODE_NAME_INVALID.search(name):
        warnings.append(f"Found invalid characters in node name {name!r} (whitespace or quotes)")
    return name


def _check_ports(s: _Settings, ports: Ports, addresses: Addresses, client_addrs: list[str]) -> None:
    if ports.server < 0:
        s.error("ports.server", "the server port cannot be disabled")
    if ports.serf_lan < 0:
        s.error("ports.serf_lan", "the LAN gossip port cannot be disabled")
    for low, high in (
        ("proxy_min_port", "proxy_max_port"),
        ("sidecar_min_port", "sidecar_max_port"),
        ("expose_min_port", "expose_max_port"),
    ):
        if getattr(ports, high) < getattr(ports, low):
            s.error(f"ports.{low}", f"{low} must be less than {high}. To disable, set both to -1.")
    # Listeners on the client addresses must not share an ip:port (Consul's addrsUnique).
    in_use: dict[tuple[str, int], str] = {}
    for name in ("dns", "http", "https", "grpc", "grpc_tls"):
        port = getattr(ports, name)
        if port <= 0:  # disabled, or a free port picked at bind time
            continue
        override = getattr(addresses, name)
        for host in override.split() if override else client_addrs:
            other = in_use.setdefault((host, port), name)
            if other != name:
                blame, first = _blame(s, name, other)
                s.error(f"ports.{blame}", f"{blame} address {host}:{port} already used by {first}")
    cluster: dict[int, str] = {}
    for name in ("server", "serf_lan", "serf_wan"):
        port = getattr(ports, name)
        if port > 0:
            other = cluster.setdefault(port, name)
            if other != name:
                blame, first = _blame(s, name, other)
                s.error(f"ports.{blame}", f"port {port} already used by ports.{first}")


def _unix_sockets(s: _Settings) -> UnixSockets:
    """unix_sockets.{user,group,mode} (checked at parse: names exist, mode is octal) as the
    uid, gid and permission bits the listeners apply."""
    user = (s.get("unix_sockets.user") or "").strip()
    group = (s.get("unix_sockets.group") or "").strip()
    mode = (s.get("unix_sockets.mode") or "").strip()
    return UnixSockets(
        uid=(int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid) if user else None,
        gid=(int(group) if group.isdigit() else grp.getgrnam(group).gr_gid) if group else None,
        mode=int(mode, 8) if mode else None,
    )


def _check_unused_keys(s: _Settings, warnings: list[str]) -> None:
    """Refuse or warn about the keys a user set that consulpy does not act on (unused.py)."""
    defaults = (None, DEFAULTS_SOURCE, DEV_SOURCE)
    user_set = {
        path: s.get(path)
        for path in unused.leaf_paths(AGENT)
        if s.provenance.origin(path) not in defaults
    }
    errors, found = unused.check_user_keys(user_set)
    for path, message in errors:
        s.error(path, message)
    warnings.extend(found)


def _locality(raw: dict[str, str]) -> dict[str, str] | None:
    """The agent's locality as catalog rows carry it (Consul's StructLocality)."""
    region, zone = raw.get("region") or "", raw.get("zone") or ""
    return {"Region": region, "Zone": zone} if region or zone else None


def _blame(s: _Settings, name: str, other: str) -> tuple[str, str]:
    """Of two colliding ports, blame the one a user set rather than a default."""
    defaults = (DEFAULTS_SOURCE, DEV_SOURCE)
    if s.provenance.origin(f"ports.{name}") in defaults:
        return other, name
    return name, other


def _acl(s: _Settings) -> ACL:
    g = s.get
    tokens = {k: v for k, v in g("acl.tokens", {}).items() if isinstance(v, str) and v}
    return ACL(
        enabled=bool(g("acl.enabled")),
        default_policy=g("acl.default_policy"),
        down_policy=g("acl.down_policy"),
        enable_token_persistence=bool(g("acl.enable_token_persistence")),
        enable_key_list_policy=bool(g("acl.enable_key_list_policy")),
        enable_token_replication=bool(g("acl.enable_token_replication")),
        token_ttl=g("acl.token_ttl"),
        policy_ttl=g("acl.policy_ttl"),
        role_ttl=g("acl.role_ttl"),
        tokens=tokens,
    )


def _limits(s: _Settings) -> Limits:
    g = s.get
    rate = g("limits.rpc_rate")
    return Limits(
        kv_max_value_size=g("limits.kv_max_value_size"),
        txn_max_req_len=g("limits.txn_max_req_len"),
        txn_max_ops=g("limits.txn_max_ops"),
        http_max_conns_per_client=g("limits.http_max_conns_per_client"),
        rpc_max_conns_per_client=g("limits.rpc_max_conns_per_client"),
        rpc_rate=math.inf if rate < 0 else rate,
        rpc_max_burst=g("limits.rpc_max_burst"),
        rpc_handshake_timeout=g("limits.rpc_handshake_timeout"),
        rpc_client_timeout=g("limits.rpc_client_timeout"),
        https_handshake_timeout=g("limits.https_handshake_timeout"),
        snapshot_max_size=g("limits.snapshot_max_size"),
    )


def _tls(s: _Settings) -> TLS:
    """Resolve `tls.{internal_rpc,https,grpc}` over `tls.defaults` as Consul does."""
    g = s.get
    for stanza in ("defaults", "https", "grpc"):
        if g(f"tls.{stanza}.verify_server_hostname") is not None:
            s.error(
                f"tls.{stanza}.verify_server_hostname",
                "verify_server_hostname is only valid in the tls.internal_rpc stanza",
            )
    if g("tls.grpc.verify_outgoing") is not None:
        s.error("tls.grpc.verify_outgoing", "verify_outgoing is not valid in the tls.grpc stanza")
    for stanza in ("defaults", "https", "internal_rpc"):
        if g(f"tls.{stanza}.use_auto_cert") is not None:
            s.error(
                f"tls.{stanza}.use_auto_cert", "use_auto_cert is only valid in the tls.grpc stanza"
            )

    def where(stanza: str, key: str) -> str:
        """The key path that supplies this stanza's value (its own, else tls.defaults)."""
        own = f"tls.{stanza}.{key}"
        return own if g(own) is not None else f"tls.defaults.{key}"

    def pick(stanza: str, key: str) -> Any:
        return g(where(stanza, key))

    def protocol(stanza: str) -> TLSProtocol:
        return TLSProtocol(
            ca_file=pick(stanza, "ca_file") or None,
            ca_path=pick(stanza, "ca_path") or None,
            cert_file=pick(stanza, "cert_file") or None,
            key_file=pick(stanza, "key_file") or None,
            verify_incoming=bool(pick(stanza, "verify_incoming")),
            verify_outgoing=bool(pick(stanza, "verify_outgoing")) if stanza != "grpc" else False,
            tls_min_version=pick(stanza, "tls_min_version") or "TLSv1_2",
            tls_cipher_suites=pick(stanza, "tls_cipher_suites") or None,
        )

    for stanza in ("internal_rpc", "https", "grpc"):
        for key, check in (
            ("tls_min_version", tlsnames.min_version),
            ("tls_cipher_suites", tlsnames.openssl_ciphers),
        ):
            try:
                check(pick(stanza, key))
            except tlsnames.TLSConfigError as exc:
                s.error(where(stanza, key), str(exc).split(": ", 1)[-1])
    rpc = protocol("internal_rpc")
    verify_server_hostname = bool(g("tls.internal_rpc.verify_server_hostname"))
    for stanza, proto in (("internal_rpc", rpc), ("https", protocol("https"))):
        if bool(proto.cert_file) != bool(proto.key_file):
            key = "key_file" if proto.cert_file else "cert_file"
            s.error(where(stanza, key), f"{stanza} needs both cert_file and key_file")
        if proto.verify_incoming and not (proto.ca_file or proto.ca_path):
            s.error(
                where(stanza, "verify_incoming"),
                f"verify_incoming for {stanza} requires ca_file or ca_path",
            )
        if proto.verify_incoming and not proto.cert_file:
            s.error(
                where(stanza, "verify_incoming"),
                f"verify_incoming for {stanza} requires cert_file and key_file",
            )
    if (rpc.verify_outgoing or verify_server_hostname) and not (rpc.ca_file or rpc.ca_path):
        key = "verify_outgoing" if rpc.verify_outgoing else "verify_server_hostname"
        path = where("internal_rpc", key) if key == "verify_outgoing" else f"tls.internal_rpc.{key}"
        s.error(path, f"{key} for internal_rpc requires ca_file or ca_path")
    return TLS(
        ca_file=rpc.ca_file,
        ca_path=rpc.ca_path,
        cert_file=rpc.cert_file,
        key_file=rpc.key_file,
        verify_incoming=rpc.verify_incoming,
        # Setting only verify_server_hostname implies verify_outgoing (CVE-2018-19653).
        verify_outgoing=rpc.verify_outgoing or verify_server_hostname,
        verify_server_hostname=verify_server_hostname,
        tls_min_version=rpc.tls_min_version,
        tls_cipher_suites=rpc.tls_cipher_suites,
        https=protocol("https"),
        grpc=protocol("grpc"),
    )
