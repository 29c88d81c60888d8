"""Built-in defaults, -dev defaults, and defaults that depend on other settings."""

from __future__ import annotations

import json
import math
import socket

import pytest

from consulpy.config import load_agent_config


def test_defaults_when_not_dev(load, data_dir):
    cfg = load()
    assert not cfg.dev and not cfg.server and not cfg.bootstrap
    assert cfg.datacenter == "dc1" and cfg.primary_datacenter == "dc1"
    assert cfg.node_name == socket.gethostname().strip()
    assert cfg.data_dir == data_dir
    assert cfg.domain == "consul."
    assert (cfg.bind_addr, cfg.client_addr, cfg.client_addrs) == (
        "0.0.0.0",
        "127.0.0.1",
        ["127.0.0.1"],
    )
    assert cfg.advertise_addr is None
    p = cfg.ports
    assert (p.http, p.https, p.dns, p.server, p.serf_lan, p.serf_wan, p.grpc, p.grpc_tls) == (
        8500,
        -1,
        8600,
        8300,
        8301,
        8302,
        -1,
        -1,
    )
    assert cfg.log_level == "info" and not cfg.log_json and not cfg.ui
    assert cfg.retry_interval == 30.0 and cfg.retry_max == 0
    assert cfg.session_ttl_min == 10.0 and cfg.check_update_interval == 300.0
    assert cfg.reconnect_timeout == 72 * 3600
    assert (cfg.raft_snapshot_threshold, cfg.raft_snapshot_interval, cfg.raft_trailing_logs) == (
        16384,
        30.0,
        10240,
    )
    assert cfg.raft_protocol == 3
    lim = cfg.limits
    assert (lim.kv_max_value_size, lim.txn_max_req_len, lim.txn_max_ops) == (524288, 524288, 128)
    assert (lim.http_max_conns_per_client, lim.rpc_max_conns_per_client) == (200, 100)
    assert math.isinf(lim.rpc_rate) and lim.rpc_max_burst == 1000
    perf = cfg.performance
    assert (perf.raft_multiplier, perf.leave_drain_time, perf.rpc_hold_timeout) == (5, 5.0, 7.0)
    ap = cfg.autopilot
    assert ap.cleanup_dead_servers and ap.last_contact_threshold == 0.2
    assert (ap.max_trailing_logs, ap.min_quorum, ap.server_stabilization_time) == (250, 0, 10.0)
    assert not cfg.acl.enabled and cfg.acl.default_policy == "allow"
    assert cfg.acl.down_policy == "extend-cache" and cfg.acl.tokens == {}
    assert cfg.connect.enabled and cfg.connect.ca_provider == "consul"
    assert not cfg.tls.enabled and not cfg.tls.verify_incoming
    assert cfg.encrypt is None and cfg.encrypt_verify_incoming and cfg.encrypt_verify_outgoing
    assert not cfg.disable_kv_key_validation
    assert cfg.services == [] and cfg.checks == [] and cfg.warnings == []


def test_leave_defaults_depend_on_server_mode(load):
    client, server = load(), load("-server", "-bootstrap-expect=3")
    assert client.leave_on_terminate and not client.skip_leave_on_interrupt
    assert not server.leave_on_terminate and server.skip_leave_on_interrupt
    explicit = load("-server", "-hcl", "leave_on_terminate = true")
    assert explicit.leave_on_terminate and explicit.skip_leave_on_interrupt


def test_local_script_checks_follow_script_checks_unless_set(load):
    assert load("-enable-script-checks").enable_local_script_checks
    cfg = load("-enable-script-checks", "-enable-local-script-checks=false")
    assert not cfg.enable_local_script_checks
    assert any("DANGEROUS" in w for w in load("-enable-script-checks").warnings)


def test_primary_datacenter_defaults_to_datacenter(load):
    assert load("-datacenter=east").primary_datacenter == "east"
    assert load("-datacenter=east", "-hcl", 'primary_datacenter = "west"').primary_datacenter == (
        "west"
    )


def test_dev_mode_defaults():
    cfg = load_agent_config(["-dev"])
    assert cfg.dev and cfg.server and cfg.bootstrap and cfg.bootstrap_expect == 0
    assert cfg.data_dir is None
    assert cfg.bind_addr == "127.0.0.1" and cfg.client_addrs == ["127.0.0.1"]
    assert cfg.effective_advertise() == "127.0.0.1"
    assert cfg.ui and cfg.connect.enabled
    assert cfg.ports.grpc == 8502 and cfg.ports.http == 8500
    assert cfg.log_level == "debug"
    assert cfg.performance.raft_multiplier == 1
    assert cfg.gossip_lan.probe_interval == 0.1 and cfg.gossip_lan.suspicion_mult == 3
    assert cfg.node_name == socket.gethostname().strip()
    assert cfg.disable_keyring_file and cfg.enable_debug
    assert cfg.warnings == []


def test_dev_defaults_can_be_overridden():
    cfg = load_agent_config(["-dev", "-log-level=warn", "-grpc-port=-1", "-bind=127.0.0.5"])
    assert (cfg.log_level, cfg.ports.grpc, cfg.bind_addr) == ("warn", -1, "127.0.0.5")
    client = load_agent_config(["-dev", "-server=false"])
    assert not client.server and not client.bootstrap  # a dev client bootstraps nothing


def test_debug_dict_is_json_and_hides_secrets(load):
    cfg = load(
        "-encrypt",
        "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
        "-hcl",
        'acl {\n tokens {\n  agent = "s3cret"\n }\n}',
        "-hcl",
        'service {\n name = "w"\n token = "svc-secret"\n}',
    )
    text = json.dumps(cfg.as_debug_dict())
    assert "s3cret" not in text and "svc-secret" not in text and "pUqJ" not in text
    debug = json.loads(text)
    assert debug["EncryptKey"] == "hidden"
    assert debug["ACL"]["Tokens"] == {"agent": "hidden"}
    assert debug["NodeName"] == cfg.node_name and debug["ServerMode"] is False
    assert debug["HTTPPort"] == 8500 and debug["DevMode"] is False
    assert debug["Limits"]["RPCRate"] == "inf"


def test_listener_helpers(load):
    cfg = load(
        "-client",
        "127.0.0.1 127.0.0.2",
        "-bind",
        "127.0.0.9",
        "-https-port=8501",
        "-hcl",
        'addresses {\n dns = "127.0.0.3"\n}',
    )
    assert cfg.http_addresses() == [("127.0.0.1", 8500), ("127.0.0.2", 8500)]
    assert cfg.https_addresses() == [("127.0.0.1", 8501), ("127.0.0.2", 8501)]
    assert cfg.dns_addresses() == [("127.0.0.3", 8600)]
    assert cfg.grpc_addresses() == []
    assert cfg.rpc_bind() == ("127.0.0.9", 8300)
    assert cfg.serf_lan_bind_address() == ("127.0.0.9", 8301)
    assert cfg.serf_wan_bind_address() == ("127.0.0.9", 8302)
    assert cfg.effective_advertise() == "127.0.0.9" == cfg.effective_advertise_wan()
    wan = load("-bind=127.0.0.9", "-advertise-wan=10.9.9.9", "-serf-wan-port=-1")
    assert wan.effective_advertise_wan() == "10.9.9.9" and wan.serf_wan_bind_address() is None


@pytest.mark.parametrize(
    ("acl", "allowed"),
    [
        ({"default_policy": "deny"}, True),  # ACLs off: the mesh allows by default, as Consul
        ({"enabled": True, "default_policy": "deny"}, False),
        ({"enabled": True, "default_policy": "allow"}, True),
    ],
)
def test_intention_default_follows_acls_only_when_they_are_on(load, acl, allowed) -> None:
    assert load(extra=[{"acl": acl}]).acl.intention_default_allow is allowed
