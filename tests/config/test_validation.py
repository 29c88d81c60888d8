"""Every validation error names the file (or flag) and the key."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError, load_agent_config

# (file content as JSON, key path in the message, reason fragment)
BAD_VALUES = [
    ('{"ports": {"http": "abc"}}', "ports.http", 'expected an integer, got "abc"'),
    ('{"ports": {"dns": 65536}}', "ports.dns", "invalid port 65536"),
    ('{"ports": {"server": 1.5}}', "ports.server", "expected an integer, got 1.5"),
    ('{"server": "yes"}', "server", 'expected a boolean (true or false), got "yes"'),
    ('{"retry_interval": "10"}', "retry_interval", "missing unit"),
    ('{"retry_interval": 10}', "retry_interval", 'expected a duration string like "10s"'),
    ('{"session_ttl_min": "1q"}', "session_ttl_min", 'unknown unit "q"'),
    ('{"bind_addr": "{{ GetPrivateIP }}"}', "bind_addr", "go-sockaddr templates are not supported"),
    ('{"bind_addr": "10.0.0.1 10.0.0.2"}', "bind_addr", "cannot contain multiple addresses"),
    ('{"bind_addr": "300.1.1.1"}', "bind_addr", "invalid ip address"),
    ('{"client_addr": "127.0.0.1 nope"}', "client_addr", "invalid ip address: 'nope'"),
    ('{"advertise_addr": "0.0.0.0"}', "advertise_addr", "cannot be 0.0.0.0"),
    ('{"advertise_addr_wan_ipv4": "::1"}', "advertise_addr_wan_ipv4", "must be an ipv4 address"),
    ('{"advertise_addr_ipv6": "10.0.0.1"}', "advertise_addr_ipv6", "must be an ipv6 address"),
    ('{"advertise_addr": "unix:///tmp/x"}', "advertise_addr", "unix sockets are not supported"),
    ('{"addresses": {"dns": "unix:///tmp/x"}}', "addresses.dns", "unix sockets are not"),
    ('{"addresses": {"http": "unix://rel.sock"}}', "addresses.http", "needs an absolute path"),
    ('{"unix_sockets": {"mode": "0789"}}', "unix_sockets.mode", "invalid mode '0789'"),
    ('{"unix_sockets": {"user": "no-such-user-x"}}', "unix_sockets.user", "no such user"),
    ('{"unix_sockets": {"group": "no-such-group-x"}}', "unix_sockets.group", "no such group"),
    ('{"xds": {"update_max_per_second": 0}}', "xds.update_max_per_second", "greater than 0"),
    (
        '{"ui_config": {"metrics_provider_options_json": "[1]"}}',
        "ui_config.metrics_provider_options_json",
        "a JSON object",
    ),
    ('{"datacenter": "dc 1"}', "datacenter", "lowercase alphanumeric"),
    ('{"datacenter": ""}', "datacenter", "cannot be empty"),
    ('{"encrypt": "not base64!"}', "encrypt", "not valid base64"),
    ('{"encrypt": "c2hvcnQ="}', "encrypt", "must decode to 16, 24 or 32 bytes, got 5"),
    ('{"log_level": "verbose"}', "log_level", "must be one of trace, debug, info, warn, error"),
    ('{"node_id": "abc"}', "node_id", "must be a UUID"),
    ('{"bootstrap_expect": -1}', "bootstrap_expect", "must be >= 0"),
    ('{"raft_protocol": 2}', "raft_protocol", "not supported"),
    ('{"performance": {"raft_multiplier": 11}}', "performance.raft_multiplier", "between 1 and 10"),
    ('{"acl": {"default_policy": "maybe"}}', "acl.default_policy", "must be one of"),
    ('{"connect": {"ca_provider": "vault"}}', "connect.ca_provider", "not supported"),
    ('{"retry_join": ["provider=aws tag_key=x"]}', "retry_join[0]", "cloud auto-join"),
    ('{"retry_join": "10.0.0.1"}', "retry_join", "expected a list"),
    ('{"node_meta": {"a": 1}}', "node_meta.a", "expected a string, got 1"),
    ('{"ports": 8500}', "ports", "expected a map, got 8500"),
    ('{"serf_lan_allowed_cidrs": ["10.0.0.0/33"]}', "serf_lan_allowed_cidrs[0]", "invalid CIDR"),
    ('{"services": [{"name": "a", "port": "80"}]}', "services[0].port", "expected an integer"),
    ('{"service": {"check": {"interval": "often"}}}', "service.check.interval", "invalid duration"),
    ('{"dns_config": {"udp_answer_limit": -1}}', "dns_config.udp_answer_limit", "must be >= 0"),
]


@pytest.mark.parametrize(("content", "key", "reason"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_value_names_file_and_key(content, key, reason, write, data_dir):
    path = write("bad.json", content)
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, "-config-file", path])
    assert err.value.errors == [f"Error parsing {path}: {key}: {reason}"] or any(
        line.startswith(f"Error parsing {path}: {key}: ") and reason in line
        for line in err.value.errors
    ), err.value.errors


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ('{"bogus": 1}', "bogus"),
        ('{"ports": {"htp": 1}}', "ports.htp"),
        ('{"acl": {"tokens": {"nope": "x"}}}', "acl.tokens.nope"),
        ('{"services": [{"name": "a", "colour": "red"}]}', "services[0].colour"),
        (
            '{"service": {"connect": {"sidecar_service": {"proxi": {}}}}}',
            "service.connect.sidecar_service.proxi",
        ),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(content, key, write, data_dir):
    path = write("unknown.json", content)
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, "-config-file", path])
    assert err.value.errors == [f"Error parsing {path}: invalid config key {key}"]


def test_hcl_errors_name_the_file_and_key(write, data_dir):
    path = write("bad.hcl", 'ports {\n  http = "abc"\n}\n')
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, "-config-file", path])
    assert str(err.value) == f'Error parsing {path}: ports.http: expected an integer, got "abc"'


def test_all_errors_of_all_files_are_reported_together(write, data_dir):
    a = write("a.hcl", 'ports {\n http = "x"\n}\nnope = 1\n')
    b = write("b.json", '{"server": 1}')
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, "-config-file", a, "-config-file", b])
    assert err.value.errors == [
        f'Error parsing {a}: ports.http: expected an integer, got "x"',
        f"Error parsing {a}: invalid config key nope",
        f"Error parsing {b}: server: expected a boolean (true or false), got 1",
    ]


def test_accepted_real_consul_keys_load(write, data_dir):
    """A config using many keys consulpy accepts but does not act on still loads."""
    path = write(
        "real.hcl",
        f'data_dir = "{data_dir}"\n'
        'ui_config {\n enabled = true\n metrics_provider = "prometheus"\n}\n'
        'telemetry {\n prometheus_retention_time = "30s"\n statsd_address = "127.0.0.1:8125"\n}\n'
        'addresses {\n http = "127.0.0.1"\n}\n'
        'recursors = ["1.1.1.1"]\n'
        'dns_config {\n allow_stale = false\n node_ttl = "10s"\n'
        ' service_ttl {\n  "*" = "5s"\n }\n}\n'
        "disable_update_check = true\nleave_on_terminate = true\nskip_leave_on_interrupt = false\n"
        "performance {\n raft_multiplier = 1\n}\nautopilot {\n min_quorum = 3\n}\n"
        'connect {\n enabled = true\n ca_config {\n  leaf_cert_ttl = "72h"\n }\n}\n'
        'acl {\n enabled = false\n}\ntls {\n defaults {\n  tls_min_version = "TLSv1_3"\n }\n}\n'
        "limits {\n http_max_conns_per_client = 400\n}\nraft_protocol = 3\n"
        "rejoin_after_leave = true\nenable_local_script_checks = true\n"
        'node_meta {\n env = "prod"\n}\nprimary_datacenter = "dc1"\nreconnect_timeout = "8h"\n'
        'session_ttl_min = "5s"\ncheck_update_interval = "1m"\nraft_snapshot_threshold = 8192\n'
        'raft_snapshot_interval = "1m"\nraft_trailing_logs = 5000\nverify_incoming = false\n'
        "verify_outgoing = false\nverify_server_hostname = false\n"
        "encrypt_verify_incoming = false\nencrypt_verify_outgoing = false\n"
        'domain = "consul"\nlog_file = "/var/log/consul/"\npid_file = "/run/c.pid"\n'
        'server_name = "server.dc1.consul"\nbootstrap = false\n'
        'watches = [{\n type = "key"\n key = "a"\n args = ["/bin/true"]\n}]\n'
        'config_entries {\n bootstrap {\n  kind = "proxy-defaults"\n  name = "global"\n'
        '  config {\n   protocol = "http"\n  }\n }\n}\n'
        'audit {\n enabled = true\n sink "My Sink" {\n  type = "file"\n }\n}\n'
        'snapshot_agent {\n snapshot {\n  interval = "1h"\n }\n}\n'
        'license_path = "/x"\nexperiments = []\nrpc {\n enable_streaming = true\n}\n'
        "use_streaming_backend = true\ndisable_remote_exec = true\n",
    )
    cfg = load_agent_config(["-config-file", path])
    assert cfg.dns_config["service_ttl"] == {"*": 5.0}
    assert cfg.connect.ca_config == {"leaf_cert_ttl": "72h"}
    # decoded as `consulpy config write` would: API spelling, defaults filled in
    (entry,) = cfg.config_entries_bootstrap
    assert entry["Kind"] == "proxy-defaults" and entry["Name"] == "global"
    assert entry["Config"] == {"protocol": "http"}
    assert cfg.watches == [{"type": "key", "key": "a", "args": ["/bin/true"]}]
    assert cfg.addresses.http == "127.0.0.1"
    assert cfg.reconnect_timeout == 8 * 3600
    assert not cfg.skip_leave_on_interrupt and cfg.leave_on_terminate
    assert cfg.tls.tls_min_version == "TLSv1_3"
    assert any("Enterprise" in w and "audit" in w for w in cfg.warnings)


# Cross-setting rules: the message names the key and the source that set it.
@pytest.mark.parametrize(
    ("argv", "content", "expected"),
    [
        (
            [],
            '{"bootstrap_expect": 3}',
            "Invalid configuration in {path}: bootstrap_expect: "
            "'bootstrap_expect > 0' requires 'server = true'",
        ),
        (
            [],
            '{"bootstrap": true}',
            "Invalid configuration in {path}: bootstrap: "
            "'bootstrap = true' requires 'server = true'",
        ),
        (
            ["-server", "-bootstrap"],
            '{"bootstrap_expect": 3}',
            "Invalid configuration in {path}: bootstrap_expect: "
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        ),
        (
            ["-dev"],
            '{"bootstrap_expect": 3}',
            "Invalid configuration in {path}: bootstrap_expect: "
            "'bootstrap_expect > 0' not allowed in dev mode",
        ),
        (
            [],
            '{"ports": {"dns": 8500}}',
            "Invalid configuration in {path}: ports.dns: "
            "dns address 127.0.0.1:8500 already used by http",
        ),
        (
            [],
            '{"ports": {"serf_lan": 8300}}',
            "Invalid configuration in {path}: ports.serf_lan: "
            "port 8300 already used by ports.server",
        ),
        (
            [],
            '{"config_entries": {"bootstrap": [{"kind": "nope", "name": "x"}]}}',
            "Invalid configuration in {path}: config_entries.bootstrap[0]: "
            "invalid config entry kind: nope",
        ),
        (
            [],
            '{"config_entries": {"bootstrap": [{"kind": "service-defaults"}]}}',
            "Invalid configuration in {path}: config_entries.bootstrap[0]: Name is required",
        ),
        (
            [],
            '{"ports": {"server": -1}}',
            "Invalid configuration in {path}: ports.server: the server port cannot be disabled",
        ),
        (
            [],
            '{"node_meta": {"consul-x": "1"}}',
            "Invalid configuration in {path}: node_meta: key 'consul-x' uses the reserved "
            "prefix 'consul-'",
        ),
        (
            [],
            '{"tls": {"defaults": {"verify_incoming": true}}}',
            "Invalid configuration in {path}: tls.defaults.verify_incoming: "
            "verify_incoming for internal_rpc requires ca_file or ca_path",
        ),
        (
            [],
            '{"tls": {"https": {"verify_server_hostname": true}}}',
            "Invalid configuration in {path}: tls.https.verify_server_hostname: "
            "verify_server_hostname is only valid in the tls.internal_rpc stanza",
        ),
    ],
)
def test_cross_setting_errors_name_source_and_key(argv, content, expected, write, data_dir):
    path = write("conf.json", content)
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, *argv, "-config-file", path])
    assert expected.format(path=path) in err.value.errors, err.value.errors


def test_cross_setting_error_from_a_flag_names_the_flag(data_dir):
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", data_dir, "-bootstrap-expect=3"])
    assert str(err.value) == (
        "Invalid configuration in flag -bootstrap-expect: bootstrap_expect: "
        "'bootstrap_expect > 0' requires 'server = true'"
    )


def test_data_dir_is_required_unless_dev():
    with pytest.raises(ConfigError) as err:
        load_agent_config([])
    assert str(err.value) == "Invalid configuration: data_dir: data_dir cannot be empty"
    assert load_agent_config(["-dev"]).data_dir is None


def test_data_dir_must_be_a_directory(write):
    path = write("file", "x")
    with pytest.raises(ConfigError, match=r"in flag -data-dir: data_dir: data_dir .* is not a dir"):
        load_agent_config(["-data-dir", path])


def test_bootstrap_expect_one_means_bootstrap(load):
    cfg = load("-server", "-bootstrap-expect=1")
    assert cfg.bootstrap and cfg.bootstrap_expect == 0
    assert any("same as Bootstrap mode" in w for w in cfg.warnings)


def test_port_zero_means_any_free_port_and_negative_disables(load):
    cfg = load("-http-port=0", "-dns-port=-5", "-grpc-port=0")
    assert cfg.ports.http == 0 and cfg.ports.dns == -1
    assert cfg.http_addresses() == [("127.0.0.1", 0)]
    assert cfg.dns_addresses() == []


def test_node_name_defaults_to_hostname_and_warns_when_not_dns_safe(load):
    import socket

    assert load().node_name == socket.gethostname().strip()
    cfg = load("-node", "my_node.local")
    assert cfg.node_name == "my_node.local"
    assert any("will not be discoverable via DNS" in w for w in cfg.warnings)
