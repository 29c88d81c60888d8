"""Config keys consulpy accepts (so real Consul files load) but does not act on, by kind.

No setting is silently ignored: every key in `keys.AGENT` is either read by consulpy, or listed
here. At load, a listed key the user set is refused (REFUSED: ignoring it would leave an
operator believing they are protected), or named in one warning at startup (the other lists),
or needs nothing (HONOURED_BY_DESIGN). tests/config/test_config_walk.py walks the schema and
fails on a key that is read nowhere and listed nowhere.

An entry is a key path; a path ending in "." covers every key under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from consulpy.config.keys import CIRCONUS_KEYS
from consulpy.config.schema import Struct

# Consul Enterprise and HashiCorp Cloud features: warned once, never implemented.
ENTERPRISE_OR_CLOUD: tuple[str, ...] = (
    "audit",
    "license_path",
    "segment",
    "segments",
    "partition",
    "read_replica",
    "non_voting_server",
    "cloud",
    "reporting",
    "snapshot_agent",
    "autopilot.redundancy_zone_tag",
    "autopilot.upgrade_version_tag",
    "autopilot.disable_upgrade_migration",
    "acl.msp_disable_bootstrap",
    "acl.tokens.managed_service_provider",
)

# Accepted and not (yet) acted on; the reason is logged with the key.
NOT_YET_USED: dict[str, str] = {
    "auto_config": "auto-config is not implemented",
    "auto_encrypt.": "auto-encrypt is not implemented",
    "tls.defaults.use_auto_cert": "auto-encrypt is not implemented",
    "tls.internal_rpc.use_auto_cert": "auto-encrypt is not implemented",
    "tls.https.use_auto_cert": "auto-encrypt is not implemented",
    "tls.grpc.use_auto_cert": "auto-encrypt is not implemented",
    "cache.": "the agent has no request cache",
    "http_config.use_cache": "the agent has no request cache",
    "connect.enable_mesh_gateway_wan_federation": "no WAN federation",
    "connect.test_ca_leaf_root_change_spread": "test-only setting",
    "disable_remote_exec": "remote exec is never run (as with the default, true)",
    "experiments": "no experiments",
    "peering.test_allow_peer_registrations": "cluster peering is not implemented",
    "ports.proxy_min_port": "managed proxies do not exist in consulpy",
    "ports.proxy_max_port": "managed proxies do not exist in consulpy",
    "ports.expose_min_port": "expose paths are not implemented",
    "ports.expose_max_port": "expose paths are not implemented",
    "primary_gateways": "no WAN federation",
    "primary_gateways_interval": "no WAN federation",
    "ui_config.metrics_provider_files": "the web UI loads no custom metrics providers",
    "protocol": "the gossip protocol version is fixed",
}

# What these keys ask for holds in consulpy without reading them.
HONOURED_BY_DESIGN: dict[str, str] = {
    "disable_update_check": "consulpy never checks for updates",
    "disable_anonymous_signature": "consulpy never sends an update-check signature",
    "disable_host_node_id": "node IDs are always random, never derived from the host",
    "use_streaming_backend": "blocking queries give the same results with one backend",
    "rpc.enable_streaming": "blocking queries give the same results with one backend",
    "acl_enforce_version_8": "no effect in Consul since 1.4 either",
    "tls_prefer_server_cipher_suites": "no effect in Consul either (Go ignores it)",
    "raft_protocol": "consulpy speaks Raft protocol 3 only; any other value is refused at load",
    "tls.https.verify_outgoing": "Consul opens no connection with the https stanza either; "
    "HTTPS checks and watch handlers verify servers unless told to skip (tls_skip_verify)",
}

# Read by the config layer itself to derive other settings.
CONSUMED_BY_CONFIG: dict[str, str] = {
    "client_addr": "split into client_addrs, the listeners' default addresses",
    "locality.": "turned into `locality` ({Region, Zone}) for the node and its services",
    "ui_config.metrics_provider_options_json": "parsed into ui_config.metrics_provider_options "
    "for the UI's settings",
    "limits.request_limits.read_rate": "only used with request_limits.mode, refused unless off",
    "limits.request_limits.write_rate": "only used with request_limits.mode, refused unless off",
}


def _set(value: Any) -> bool:
    return value not in (None, "", [], {}, False)


# Refused at load when set: ignoring them would leave the agent unprotected in a way the
# operator asked it not to be. path -> (is it set in a way we cannot honour?, message)
REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "serf_lan_allowed_cidrs": (
        _set,
        "serf_lan_allowed_cidrs is not supported by consulpy: gossip is accepted from any "
        "address. Restrict the gossip port with a firewall and remove this setting",
    ),
    "serf_wan_allowed_cidrs": (
        _set,
        "serf_wan_allowed_cidrs is not supported by consulpy: WAN gossip is accepted from any "
        "address. Restrict the WAN gossip port with a firewall and remove this setting",
    ),
    "enable_debug": (
        lambda v: v is True,
        "enable_debug = true is not supported by consulpy: it serves no debug (pprof) "
        "endpoints, as Consul with enable_debug = false; remove this setting or set it to false",
    ),
    "raft_logstore.disable_log_cache": (
        lambda v: v is True,
        "raft_logstore.disable_log_cache is not supported by consulpy: its Raft log store has "
        "no separate log cache to turn off; remove this setting",
    ),
    "raft_logstore.verification.enabled": (
        lambda v: v is True,
        "raft_logstore.verification is not supported by consulpy: there are no periodic "
        "leader-to-follower log checksums (each log record carries its own checksum, checked "
        "when it is read); remove this setting",
    ),
    "raft_logstore.verification.interval": (
        lambda v: bool(v),
        "raft_logstore.verification is not supported by consulpy (see "
        "raft_logstore.verification.enabled); remove this setting",
    ),
    "raft_logstore.boltdb.no_freelist_sync": (
        lambda v: v is True,
        "raft_logstore.boltdb.no_freelist_sync (formerly raft_boltdb.NoFreelistSync) is not "
        "supported by consulpy: the Raft log is not stored in BoltDB; remove this setting",
    ),
    "telemetry.statsite_address": (
        _set,
        "telemetry.statsite_address is not supported by consulpy (no statsite sink); use "
        "telemetry.statsd_address, dogstatsd_addr or Prometheus",
    ),
    "telemetry.enable_host_metrics": (
        lambda v: v is True,
        "telemetry.enable_host_metrics is not supported by consulpy (no consul.host.* "
        "metrics); scrape the host with node_exporter instead, or remove this setting",
    ),
    "telemetry.disable_compat_1.9": (
        lambda v: v is False,
        "telemetry.disable_compat_1.9 = false is not supported by consulpy: the pre-1.9 metric "
        "names (consul.http.<METHOD>.<path>) are never emitted; remove this setting",
    ),
    **{
        f"telemetry.{key}": (
            _set,
            f"telemetry.{key} is not supported by consulpy (no Circonus sink); use "
            "telemetry.statsd_address, dogstatsd_addr or Prometheus",
        )
        for key in CIRCONUS_KEYS
    },
    "limits.request_limits.mode": (
        lambda v: v not in (None, "disabled"),
        "limits.request_limits is not supported by consulpy; use limits.rpc_rate and "
        'limits.http_max_conns_per_client, or set mode = "disabled"',
    ),
}


def leaf_paths(spec: Struct, prefix: str = "") -> Iterator[str]:
    """Every key path of the schema down to the first non-struct value."""
    for name, sub in spec.fields.items():
        if isinstance(sub, Struct):
            yield from leaf_paths(sub, f"{prefix}{name}.")
        else:
            yield prefix + name


def _match(path: str, entries: Iterable[str]) -> str | None:
    for entry in entries:
        if path == entry or (entry.endswith(".") and path.startswith(entry)):
            return entry
    return None


def classify(path: str) -> str | None:
    """Which list covers `path` (most specific first), or None when consulpy reads it."""
    if path in REFUSED:
        return "refused"
    if _match(path, ENTERPRISE_OR_CLOUD):
        return "enterprise"
    if _match(path, HONOURED_BY_DESIGN) or _match(path, CONSUMED_BY_CONFIG):
        return "honoured"
    if _match(path, NOT_YET_USED):
        return "unused"
    return None


def check_user_keys(user_set: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """From the key paths a user set (path -> value), the load errors (path, message) and
    the startup warnings: one warning per kind, listing the keys."""
    errors: list[tuple[str, str]] = []
    by_kind: dict[str, list[str]] = {"enterprise": [], "unused": []}
    for path in sorted(user_set):
        kind = classify(path)
        if kind == "refused":
            refuse, message = REFUSED[path]
            if refuse(user_set[path]):
                errors.append((path, message))
        elif kind == "enterprise":
            by_kind["enterprise"].append(path)
        elif kind == "unused":
            entry = _match(path, NOT_YET_USED)
            reason = NOT_YET_USED[entry] if entry else "not implemented in this build"
            by_kind["unused"].append(f"{path} ({reason})")
    warnings = []
    if by_kind["enterprise"]:
        warnings.append(
            "Consul Enterprise / HCP settings are ignored by consulpy: "
            + ", ".join(by_kind["enterprise"])
        )
    if by_kind["unused"]:
        warnings.append(
            "These settings are accepted and IGNORED by consulpy (see docs/compatibility.md): "
            + "; ".join(by_kind["unused"])
        )
    return errors, warnings
