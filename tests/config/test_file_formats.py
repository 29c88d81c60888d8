"""HCL and JSON files that say the same thing produce the same model."""

from __future__ import annotations

import json

import pytest

from consulpy.config import ConfigError, load_agent_config

from .conftest import settings

HCL = """
# a realistic server config, in HCL
datacenter = "east-1"
data_dir   = "{data_dir}"
server     = true
bootstrap_expect = 3
node_name  = "server-1"
bind_addr  = "10.0.0.5"
client_addr = "127.0.0.1 ::1"
retry_join = ["10.0.0.6", "10.0.0.7:8301"]
encrypt    = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
log_level  = "WARN"
leave_on_terminate = true
session_ttl_min = "1m30s"

ports {
  http  = 18500
  dns   = -1
  grpc  = 8502
}

ui_config {
  enabled = true
}

node_meta {
  rack = "r1"
  zone = "a"
}

acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    agent = "agent-token"
  }
}

performance {
  raft_multiplier = 1
}

telemetry {
  prometheus_retention_time = "24h"
  disable_hostname = true
}

service {
  name = "web"
  id   = "web-1"
  port = 8080
  tags = ["v1", "primary"]
  enable_tag_override = true
  meta {
    version = "1.2"
  }
  check {
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {
      proxy {
        upstreams {
          destination_name = "db"
          local_bind_port  = 9191
        }
      }
    }
  }
}

service {
  name = "db"
  port = 5432
  checks = [
    { tcp = "127.0.0.1:5432", interval = "5s" },
    { args = ["/bin/check-db"], interval = "30s" },
  ]
}

check {
  id   = "mem"
  name = "Memory"
  ttl  = "30s"
}
"""

JSON = """
{
  "datacenter": "east-1",
  "data_dir": "{data_dir}",
  "server": true,
  "bootstrap_expect": 3,
  "node_name": "server-1",
  "bind_addr": "10.0.0.5",
  "client_addr": "127.0.0.1 ::1",
  "retry_join": ["10.0.0.6", "10.0.0.7:8301"],
  "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
  "log_level": "WARN",
  "leave_on_terminate": true,
  "session_ttl_min": "1m30s",
  "ports": {"http": 18500, "dns": -1, "grpc": 8502},
  "ui_config": {"enabled": true},
  "node_meta": {"rack": "r1", "zone": "a"},
  "acl": {"enabled": true, "default_policy": "deny", "tokens": {"agent": "agent-token"}},
  "performance": {"raft_multiplier": 1},
  "telemetry": {"prometheus_retention_time": "24h", "disable_hostname": true},
  "services": [
    {
      "name": "web",
      "id": "web-1",
      "port": 8080,
      "tags": ["v1", "primary"],
      "enable_tag_override": true,
      "meta": {"version": "1.2"},
      "check": {"http": "http://127.0.0.1:8080/health", "interval": "10s", "timeout": "1s"},
      "connect": {"sidecar_service": {"proxy": {"upstreams": [
        {"destination_name": "db", "local_bind_port": 9191}
      ]}}}
    },
    {
      "name": "db",
      "port": 5432,
      "checks": [
        {"tcp": "127.0.0.1:5432", "interval": "5s"},
        {"args": ["/bin/check-db"], "interval": "30s"}
      ]
    }
  ],
  "checks": [{"id": "mem", "name": "Memory", "ttl": "30s"}]
}
"""


def test_hcl_and_json_produce_identical_models(write, data_dir):
    hcl = load_agent_config(["-config-file", write("a.hcl", HCL.replace("{data_dir}", data_dir))])
    js = load_agent_config(["-config-file", write("a.json", JSON.replace("{data_dir}", data_dir))])
    assert settings(hcl) == settings(js)
    assert hcl.config_files[0].endswith("a.hcl")


def test_hcl_values_are_typed_and_normalised(write, data_dir):
    cfg = load_agent_config(["-config-file", write("a.hcl", HCL.replace("{data_dir}", data_dir))])
    assert cfg.datacenter == "east-1"
    assert cfg.server and cfg.bootstrap_expect == 3
    assert cfg.client_addrs == ["127.0.0.1", "::1"]
    assert cfg.ports.http == 18500 and cfg.ports.dns == -1 and cfg.ports.grpc == 8502
    assert cfg.ports.server == 8300  # untouched keys keep their defaults
    assert cfg.log_level == "warn"
    assert cfg.session_ttl_min == 90.0
    assert cfg.telemetry["prometheus_retention_time"] == 86400.0
    assert cfg.node_meta == {"rack": "r1", "zone": "a"}
    assert cfg.acl.enabled and cfg.acl.default_policy == "deny"
    assert cfg.acl.tokens == {"agent": "agent-token"}
    assert cfg.ui and cfg.ui_config.enabled
    assert cfg.performance.raft_multiplier == 1


def test_service_definitions_use_api_field_names(write, data_dir):
    cfg = load_agent_config(["-config-file", write("a.hcl", HCL.replace("{data_dir}", data_dir))])
    web, db = cfg.services
    assert web == {
        "Name": "web",
        "ID": "web-1",
        "Port": 8080,
        "Tags": ["v1", "primary"],
        "EnableTagOverride": True,
        "Meta": {"version": "1.2"},
        "Check": {"HTTP": "http://127.0.0.1:8080/health", "Interval": "10s", "Timeout": "1s"},
        "Connect": {
            "SidecarService": {
                "Proxy": {"Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}]}
            }
        },
    }
    assert db["Checks"] == [
        {"TCP": "127.0.0.1:5432", "Interval": "5s"},
        {"Args": ["/bin/check-db"], "Interval": "30s"},
    ]
    assert cfg.checks == [{"ID": "mem", "Name": "Memory", "TTL": "30s"}]


def test_api_spelling_in_files_is_accepted(write, data_dir):
    doc = {
        "data_dir": data_dir,
        "service": {
            "Name": "api",
            "Port": 80,
            "EnableTagOverride": True,
            "Checks": [{"CheckID": "c1", "TTL": "5s", "DeregisterCriticalServiceAfter": "1m"}],
        },
    }
    path = write("svc.json", json.dumps(doc))
    cfg = load_agent_config(["-config-file", path])
    assert cfg.services == [
        {
            "Name": "api",
            "Port": 80,
            "EnableTagOverride": True,
            "Checks": [{"CheckID": "c1", "TTL": "5s", "DeregisterCriticalServiceAfter": "1m"}],
        }
    ]


def test_repeated_check_blocks_in_a_service_become_checks(write, data_dir):
    path = write(
        "svc.hcl",
        f'data_dir = "{data_dir}"\n'
        'service {\n name = "x"\n check {\n  ttl = "5s"\n }\n check {\n  ttl = "9s"\n }\n}\n',
    )
    (svc,) = load_agent_config(["-config-file", path]).services
    assert svc == {"Name": "x", "Checks": [{"TTL": "5s"}, {"TTL": "9s"}]}


def test_hcl_attribute_and_block_syntax_are_equivalent(write, data_dir):
    block = write("b.hcl", f'data_dir = "{data_dir}"\nports {{\n  http = 1234\n}}\n')
    attr = write("c.hcl", f'data_dir = "{data_dir}"\nports = {{ http = 1234 }}\n')
    assert (
        load_agent_config(["-config-file", block]).ports
        == load_agent_config(["-config-file", attr]).ports
    )


def test_hcl_strings_escapes_heredocs_and_numbers(write, data_dir):
    path = write(
        "s.hcl",
        f'data_dir = "{data_dir}"\n'
        'node_meta {\n  quote = "say \\"hi\\"\\tnow"\n  unicode = "caf\\u00e9"\n'
        '  literal = "$${not_interpolated}"\n}\n'
        "limits {\n  kv_max_value_size = 1e3\n}\n",
    )
    cfg = load_agent_config(["-config-file", path])
    assert cfg.node_meta == {
        "quote": 'say "hi"\tnow',
        "unicode": "café",
        "literal": "${not_interpolated}",
    }
    assert cfg.limits.kv_max_value_size == 1000


def test_json_content_in_an_hcl_file_is_read(write, data_dir):
    # HCL1, which Consul uses, is a superset of JSON; `consul validate` relies on that.
    path = write("conf", json.dumps({"data_dir": data_dir, "datacenter": "x"}))
    cfg = load_agent_config(["-config-format", "hcl", "-config-file", path])
    assert cfg.datacenter == "x"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ports {\n http = 1\n", "HCL syntax error"),
        ("node_name = bare_word\n", "node_name: unsupported HCL expression 'bare_word'"),
        ("x = = 1\n", "HCL syntax error at line 1"),
    ],
)
def test_hcl_syntax_errors_name_the_file(write, text, needle):
    path = write("bad.hcl", text)
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-dev", "-config-file", path])
    assert str(err.value).startswith(f"Error parsing {path}: ")
    assert needle in str(err.value)


def test_json_syntax_error_names_file_line_and_column(write):
    path = write("bad.json", '{\n  "datacenter": "x",\n}\n')
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-dev", "-config-file", path])
    assert f"Error parsing {path}: invalid JSON at line 3, column 1" in str(err.value)


def test_json_top_level_must_be_an_object(write):
    path = write("list.json", "[1, 2]")
    with pytest.raises(ConfigError, match="top level must be a JSON object"):
        load_agent_config(["-dev", "-config-file", path])


def test_empty_files_contribute_nothing(write):
    cfg = load_agent_config(
        ["-dev", "-config-file", write("e.hcl", "  \n"), "-config-file", write("e.json", "")]
    )
    assert cfg.datacenter == "dc1"
