"""Every configuration key an agent config file may contain, with its type.

The set follows Consul's own config file format so that real users' files load. Keys consulpy
does not act on are listed in consulpy/config/unused.py (refused, or warned about at startup);
tests/config/test_config_walk.py keeps the two in step. A key that is not listed here is an
error naming it, as in Consul.
"""

from __future__ import annotations

from consulpy.config import checks as c
from consulpy.config.schema import (
    Bool,
    Duration,
    Float,
    Int,
    ListOf,
    MapOf,
    OneOrMany,
    OpaqueList,
    OpaqueMap,
    Str,
    Struct,
    at_least,
    choice,
)
from consulpy.config.services import CHECK, SERVICE


def _strs() -> ListOf:
    return ListOf(Str())


_TLS_PROTOCOL = {
    "ca_file": Str(),
    "ca_path": Str(),
    "cert_file": Str(),
    "key_file": Str(),
    "tls_min_version": Str(),
    "tls_cipher_suites": Str(),
    "verify_incoming": Bool(),
    "verify_outgoing": Bool(),
    "verify_server_hostname": Bool(),
    "use_auto_cert": Bool(),
}

_GOSSIP = {
    "gossip_nodes": Int(at_least(1)),
    "gossip_interval": Duration(),
    "probe_interval": Duration(),
    "probe_timeout": Duration(),
    "suspicion_mult": Int(at_least(1)),
    "retransmit_mult": Int(at_least(1)),
}

PORTS = Struct(
    {
        name: Int(c.port)
        for name in (
            "dns",
            "http",
            "https",
            "serf_lan",
            "serf_wan",
            "server",
            "grpc",
            "grpc_tls",
            "proxy_min_port",
            "proxy_max_port",
            "sidecar_min_port",
            "sidecar_max_port",
            "expose_min_port",
            "expose_max_port",
        )
    }
)

ACL = Struct(
    {
        "enabled": Bool(),
        "enable_token_replication": Bool(),
        "policy_ttl": Duration(),
        "role_ttl": Duration(),
        "token_ttl": Duration(),
        "down_policy": Str(choice("allow", "deny", "extend-cache", "async-cache")),
        "default_policy": Str(choice("allow", "deny")),
        "enable_key_list_policy": Bool(),
        "enable_token_persistence": Bool(),
        "msp_disable_bootstrap": Bool(),
        "tokens": Struct(
            {
                "initial_management": Str(),
                "replication": Str(),
                "agent_recovery": Str(),
                "default": Str(),
                "agent": Str(),
                "config_file_service_registration": Str(),
                "dns": Str(),
                "managed_service_provider": OpaqueList(),
                "master": Str(),  # deprecated spelling of initial_management
                "agent_master": Str(),  # deprecated spelling of agent_recovery
            }
        ),
    }
)

# Consul's Circonus sink settings: typed here, refused when set (config/unused.py).
CIRCONUS_KEYS = (
    "circonus_api_app",
    "circonus_api_token",
    "circonus_api_url",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "circonus_check_display_name",
    "circonus_check_force_metric_activation",
    "circonus_check_id",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_tags",
    "circonus_submission_interval",
    "circonus_submission_url",
)

AGENT = Struct(
    {
        "acl": ACL,
        "addresses": Struct(
            {
                **{k: Str(c.ip_list) for k in ("dns", "grpc", "grpc_tls")},
                **{k: Str(c.listen_list) for k in ("http", "https")},
            }
        ),
        "advertise_addr": Str(c.advertise_ip),
        "advertise_addr_ipv4": Str(c.advertise_ipv4),
        "advertise_addr_ipv6": Str(c.advertise_ipv6),
        "advertise_addr_wan": Str(c.advertise_ip),
        "advertise_addr_wan_ipv4": Str(c.advertise_ipv4),
        "advertise_addr_wan_ipv6": Str(c.advertise_ipv6),
        "advertise_reconnect_timeout": Duration(),
        "alt_domain": Str(),
        "audit": OpaqueMap(),
        "auto_config": OpaqueMap(),
        "auto_encrypt": Struct(
            {"tls": Bool(), "dns_san": _strs(), "ip_san": _strs(), "allow_tls": Bool()}
        ),
        "auto_reload_config": Bool(),
        "autopilot": Struct(
            {
                "cleanup_dead_servers": Bool(),
                "last_contact_threshold": Duration(),
                "max_trailing_logs": Int(at_least(0)),
                "min_quorum": Int(at_least(0)),
                "server_stabilization_time": Duration(),
                "disable_upgrade_migration": Bool(),
                "redundancy_zone_tag": Str(),
                "upgrade_version_tag": Str(),
            }
        ),
        "bind_addr": Str(c.bind_ip),
        "bootstrap": Bool(),
        "bootstrap_expect": Int(at_least(0)),
        "cache": Struct({"entry_fetch_max_burst": Int(), "entry_fetch_rate": Float()}),
        "check": OneOrMany(CHECK),
        "check_output_max_size": Int(at_least(1)),
        "check_update_interval": Duration(),
        "checks": ListOf(CHECK),
        "client_addr": Str(c.ip_list),
        "cloud": OpaqueMap(),
        "config_entries": Struct({"bootstrap": OpaqueList()}),
        "connect": Struct(
            {
                "enabled": Bool(),
                "ca_provider": Str(c.ca_provider),
                "ca_config": OpaqueMap(),
                "enable_mesh_gateway_wan_federation": Bool(),
                "test_ca_leaf_root_change_spread": Duration(),
            }
        ),
        # Consul's internal server settings; only the coordinate batching is read.
        "consul": Struct(
            {
                "coordinate": Struct(
                    {
                        "update_period": Duration(at_least(0)),
                        "update_batch_size": Int(at_least(1)),
                        "update_max_batches": Int(at_least(1)),
                    }
                )
            }
        ),
        "data_dir": Str(),
        "datacenter": Str(c.datacenter),
        "default_query_time": Duration(),
        "disable_anonymous_signature": Bool(),
        "disable_coordinates": Bool(),
        "disable_host_node_id": Bool(),
        "disable_http_unprintable_char_filter": Bool(),
        "disable_keyring_file": Bool(),
        "disable_kv_key_validation": Bool(),  # consulpy extension
        "disable_remote_exec": Bool(),
        "disable_update_check": Bool(),
        "discard_check_output": Bool(),
        "discovery_max_stale": Duration(),
        "dns_config": Struct(
            {
                "allow_stale": Bool(),
                "a_record_limit": Int(at_least(0)),
                "disable_compression": Bool(),
                "enable_truncate": Bool(),
                "max_stale": Duration(),
                "node_ttl": Duration(),
                "only_passing": Bool(),
                "recursor_strategy": Str(choice("sequential", "random")),
                "recursor_timeout": Duration(),
                "service_ttl": MapOf(Duration()),
                "udp_answer_limit": Int(at_least(0)),
                "enable_additional_node_meta_txt": Bool(),
                "soa": Struct(
                    {k: Int(at_least(0)) for k in ("refresh", "retry", "expire", "min_ttl")}
                ),
                "use_cache": Bool(),
                "cache_max_age": Duration(),
                "prefer_namespace": Bool(),
            }
        ),
        "domain": Str(),
        "enable_acl_replication": Bool(),
        "enable_agent_tls_for_checks": Bool(),
        "enable_central_service_config": Bool(),
        "enable_debug": Bool(),
        "enable_local_script_checks": Bool(),
        "enable_script_checks": Bool(),
        "enable_syslog": Bool(),
        "encrypt": Str(c.encrypt_key),
        "event_loop": Str(c.event_loop),  # consulpy extension
        "encrypt_verify_incoming": Bool(),
        "encrypt_verify_outgoing": Bool(),
        "experiments": _strs(),
        "gossip_lan": Struct(_GOSSIP),
        "gossip_wan": Struct(_GOSSIP),
        "http_config": Struct(
            {
                "block_endpoints": _strs(),
                "allow_write_http_from": ListOf(Str(c.cidr)),
                "response_headers": MapOf(Str()),
                "use_cache": Bool(),
                "max_header_bytes": Int(),
            }
        ),
        "leave_on_terminate": Bool(),
        "license_path": Str(),
        "limits": Struct(
            {
                "http_max_conns_per_client": Int(at_least(0)),
                "https_handshake_timeout": Duration(),
                "request_limits": Struct(
                    {
                        "mode": Str(choice("disabled", "permissive", "enforcing")),
                        "read_rate": Float(),
                        "write_rate": Float(),
                    }
                ),
                "rpc_client_timeout": Duration(),
                "rpc_handshake_timeout": Duration(),
                "rpc_max_burst": Int(at_least(0)),
                "rpc_max_conns_per_client": Int(at_least(0)),
                "rpc_rate": Float(),
                "kv_max_value_size": Int(at_least(1)),
                "txn_max_req_len": Int(at_least(1)),
                "txn_max_ops": Int(at_least(1)),  # consulpy extension
                "snapshot_max_size": Int(at_least(1)),  # consulpy extension
            }
        ),
        "locality": Struct({"region": Str(), "zone": Str()}),
        "log_file": Str(),
        "log_json": Bool(),
        "log_level": Str(c.log_level),
        "log_rotate_bytes": Int(at_least(0)),
        "log_rotate_duration": Duration(),
        "log_rotate_max_files": Int(),
        "log_sublevels": MapOf(Str(c.log_level)),
        "max_query_time": Duration(),
        "node_id": Str(c.node_id),
        "node_meta": MapOf(Str()),
        "node_name": Str(),
        "non_voting_server": Bool(),
        "partition": Str(),
        "peering": Struct({"enabled": Bool(), "test_allow_peer_registrations": Bool()}),
        "performance": Struct(
            {
                "leave_drain_time": Duration(),
                "raft_multiplier": Int(c.raft_multiplier),
                "rpc_hold_timeout": Duration(),
            }
        ),
        "pid_file": Str(),
        "ports": PORTS,
        "primary_datacenter": Str(c.optional_datacenter),
        "primary_gateways": _strs(),
        "primary_gateways_interval": Duration(),
        "protocol": Int(),
        "raft_boltdb": Struct({"NoFreelistSync": Bool()}),
        "raft_logstore": Struct(
            {
                # "wal": the checksummed segment log; "boltdb": Consul's name for its previous
                # store, here the previous (SQLite) one, kept for a rollback.
                "backend": Str(choice("wal", "boltdb")),
                "disable_log_cache": Bool(),
                "verification": Struct({"enabled": Bool(), "interval": Duration()}),
                "boltdb": Struct({"no_freelist_sync": Bool()}),
                "wal": Struct({"segment_size_mb": Int(at_least(1))}),
            }
        ),
        "raft_protocol": Int(c.raft_protocol),
        "raft_snapshot_interval": Duration(),
        "raft_snapshot_threshold": Int(at_least(1)),
        "raft_trailing_logs": Int(at_least(0)),
        "read_replica": Bool(),
        "reconnect_timeout": Duration(),
        "reconnect_timeout_wan": Duration(),
        "recursors": _strs(),
        "rejoin_after_leave": Bool(),
        "reporting": OpaqueMap(),
        "retry_interval": Duration(),
        "retry_interval_wan": Duration(),
        "retry_join": ListOf(Str(c.join_address)),
        "retry_join_wan": ListOf(Str(c.join_address)),
        "retry_max": Int(at_least(0)),
        "retry_max_wan": Int(at_least(0)),
        "rpc": Struct({"enable_streaming": Bool()}),
        "segment": Str(),
        "segments": OpaqueList(),
        "serf_lan": Str(c.ip),
        "serf_lan_allowed_cidrs": ListOf(Str(c.cidr)),
        "serf_wan": Str(c.ip),
        "serf_wan_allowed_cidrs": ListOf(Str(c.cidr)),
        "server": Bool(),
        "server_name": Str(),
        "server_rejoin_age_max": Duration(),
        "service": OneOrMany(SERVICE),
        "services": ListOf(SERVICE),
        "session_ttl_min": Duration(at_least(0)),
        "sync_coordinate_interval_min": Duration(at_least(0)),
        "sync_coordinate_rate_target": Float(),
        "skip_leave_on_interrupt": Bool(),
        "snapshot_agent": OpaqueMap(),
        "start_join": ListOf(Str(c.join_address)),
        "start_join_wan": ListOf(Str(c.join_address)),
        "syslog_facility": Str(),
        "tagged_addresses": MapOf(Str()),
        "telemetry": Struct(
            {
                name: Str()
                for name in (
                    *CIRCONUS_KEYS,
                    "metrics_prefix",
                    "statsite_address",
                )
            }
            | {
                "dogstatsd_addr": Str(c.metrics_address),
                "statsd_address": Str(c.metrics_address),
                "disable_hostname": Bool(),
                "disable_compat_1.9": Bool(),
                "dogstatsd_tags": _strs(),
                "retry_failed_connection": Bool(),
                "filter_default": Bool(),
                "prefix_filter": ListOf(Str(c.filter_rule)),
                "prometheus_retention_time": Duration(),
                "enable_host_metrics": Bool(),
            }
        ),
        "tls": Struct(
            {
                "defaults": Struct(_TLS_PROTOCOL),
                "internal_rpc": Struct(_TLS_PROTOCOL),
                "https": Struct(_TLS_PROTOCOL),
                "grpc": Struct(_TLS_PROTOCOL),
            }
        ),
        "translate_wan_addrs": Bool(),
        "ui": Bool(),
        "ui_config": Struct(
            {
                "enabled": Bool(),
                "dir": Str(),
                "content_path": Str(),
                "metrics_provider": Str(),
                "metrics_provider_files": _strs(),
                "metrics_provider_options_json": Str(c.json_object_text),
                "metrics_proxy": OpaqueMap(),
                "dashboard_url_templates": MapOf(Str()),
            }
        ),
        "ui_content_path": Str(),
        "ui_dir": Str(),
        "unix_sockets": Struct(
            {
                "group": Str(c.socket_group),
                "mode": Str(c.socket_mode),
                "user": Str(c.socket_user),
            }
        ),
        "use_streaming_backend": Bool(),
        "watches": OpaqueList(),
        "xds": Struct({"update_max_per_second": Float(c.positive_rate)}),
        # Deprecated top-level keys, translated by consulpy.config.deprecated.
        "acl_agent_master_token": Str(),
        "acl_agent_token": Str(),
        "acl_datacenter": Str(c.datacenter),
        "acl_default_policy": Str(choice("allow", "deny")),
        "acl_down_policy": Str(choice("allow", "deny", "extend-cache", "async-cache")),
        "acl_enable_key_list_policy": Bool(),
        "acl_enforce_version_8": Bool(),
        "acl_master_token": Str(),
        "acl_replication_token": Str(),
        "acl_token": Str(),
        "acl_ttl": Duration(),
        "ca_file": Str(),
        "ca_path": Str(),
        "cert_file": Str(),
        "key_file": Str(),
        "tls_cipher_suites": Str(),
        "tls_min_version": Str(),
        "tls_prefer_server_cipher_suites": Bool(),
        "verify_incoming": Bool(),
        "verify_incoming_https": Bool(),
        "verify_incoming_rpc": Bool(),
        "verify_outgoing": Bool(),
        "verify_server_hostname": Bool(),
    }
)
"""The schema of one agent config source (a file, an -hcl fragment, the flags)."""
