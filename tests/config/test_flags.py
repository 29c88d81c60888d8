"""Every agent flag, in Consul's `-flag` and the `--flag` spelling, `=value` and ` value`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consulpy.config import FLAGS, AgentConfig, ConfigError, flags_help, load_agent_config

KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
NODE_ID = "8F0b7a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

# flag -> (value, extra argv needed for a valid config, check)
VALUED: dict[str, tuple[str, list[str], Callable[[AgentConfig], Any]]] = {
    "bootstrap-expect": ("3", ["-server"], lambda c: c.bootstrap_expect == 3),
    "node": ("node-7", [], lambda c: c.node_name == "node-7"),
    "node-id": (NODE_ID, [], lambda c: c.node_id == NODE_ID.lower()),
    "datacenter": ("West", [], lambda c: c.datacenter == "west"),
    "client": ("127.0.0.2 ::1", [], lambda c: c.client_addrs == ["127.0.0.2", "::1"]),
    "bind": ("127.0.0.3", [], lambda c: c.bind_addr == "127.0.0.3"),
    "advertise": ("10.1.2.3", [], lambda c: c.effective_advertise() == "10.1.2.3"),
    "retry-join": ("10.0.0.1:8301", [], lambda c: c.retry_join == ["10.0.0.1:8301"]),
    "join": ("10.0.0.2", [], lambda c: c.start_join == ["10.0.0.2"]),
    "retry-interval": ("1m30s", [], lambda c: c.retry_interval == 90.0),
    "retry-max": ("7", [], lambda c: c.retry_max == 7),
    "encrypt": (KEY, [], lambda c: c.encrypt == KEY),
    "http-port": ("18500", [], lambda c: c.ports.http == 18500),
    "https-port": ("18501", [], lambda c: c.ports.https == 18501),
    "dns-port": ("-1", [], lambda c: c.ports.dns == -1),
    "grpc-port": ("18502", [], lambda c: c.ports.grpc == 18502),
    "server-port": ("18300", [], lambda c: c.ports.server == 18300),
    "serf-lan-port": ("18301", [], lambda c: c.ports.serf_lan == 18301),
    "serf-wan-port": ("-1", [], lambda c: c.ports.serf_wan == -1),
    "log-level": ("TRACE", [], lambda c: c.log_level == "trace"),
    "node-meta": ("rack:r1", [], lambda c: c.node_meta == {"rack": "r1"}),
    "pid-file": ("/run/consulpy.pid", [], lambda c: c.pid_file == "/run/consulpy.pid"),
    "hcl": ('domain = "corp."', [], lambda c: c.domain == "corp."),
    "config-format": ("json", [], lambda c: c.datacenter == "dc1"),
}

BOOLEAN: dict[str, Callable[[AgentConfig], bool]] = {
    "server": lambda c: c.server,
    "bootstrap": lambda c: c.bootstrap,
    "log-json": lambda c: c.log_json,
    "ui": lambda c: c.ui and c.ui_config.enabled,
    "enable-script-checks": lambda c: c.enable_script_checks,
    "enable-local-script-checks": lambda c: c.enable_local_script_checks,
    "disable-host-node-id": lambda c: c.disable_host_node_id,
}


def _spellings(flag: str, value: str) -> list[list[str]]:
    return [
        [f"-{flag}={value}"],
        [f"-{flag}", value],
        [f"--{flag}={value}"],
        [f"--{flag}", value],
    ]


def _ids(flag: str) -> list[str]:
    return [f"-{flag}=v", f"-{flag} v", f"--{flag}=v", f"--{flag} v"]


@pytest.mark.parametrize(
    ("flag", "argv"),
    [(flag, argv) for flag, (value, _, _) in VALUED.items() for argv in _spellings(flag, value)],
    ids=[i for flag in VALUED for i in _ids(flag)],
)
def test_valued_flag(flag, argv, load):
    _, needs, check = VALUED[flag]
    assert check(load(*needs, *argv))


@pytest.mark.parametrize(
    ("flag", "spelling"),
    [(f, s) for f in BOOLEAN for s in ("-{}", "--{}", "-{}=true", "--{}=true", "-{}=1")],
)
def test_boolean_flag_true(flag, spelling, load):
    extra = ["-server"] if flag == "bootstrap" else []
    assert BOOLEAN[flag](load(*extra, spelling.format(flag)))


@pytest.mark.parametrize("flag", ["server", "log-json", "ui", "enable-script-checks"])
@pytest.mark.parametrize("spelling", ["-{}=false", "--{}=false", "-{}=0", "-{}=F"])
def test_boolean_flag_false_overrides_a_file(flag, spelling, write, load):
    key = {
        "server": "server",
        "log-json": "log_json",
        "ui": "ui",
        "enable-script-checks": "enable_script_checks",
    }[flag]
    path = write("t.json", json.dumps({key: True}))
    assert not BOOLEAN[flag](load("-config-file", path, spelling.format(flag)))


def test_boolean_flag_does_not_consume_the_next_argument(load):
    cfg = load("-server", "-node", "n1")
    assert cfg.server and cfg.node_name == "n1"


@pytest.mark.parametrize("spelling", ["-dev", "--dev", "-dev=true"])
def test_dev_flag(spelling):
    cfg = load_agent_config([spelling])
    assert cfg.dev and cfg.server


@pytest.mark.parametrize("flag", ["config-file", "config-dir"])
@pytest.mark.parametrize("form", ["-{}={}", "--{}={}", "-{} {}", "--{} {}"])
def test_config_path_flags(flag, form, write, tmp_path, load):
    path = write("conf/a.hcl", 'datacenter = "from-file"\n')
    target = path if flag == "config-file" else str(tmp_path / "conf")
    cfg = load(*form.format(flag, target).split(" "))
    assert cfg.datacenter == "from-file"
    assert cfg.config_files == [path]


def test_repeatable_flags_accumulate(load):
    cfg = load(
        "-retry-join=a",
        "--retry-join",
        "b",
        "-join=c",
        "-join",
        "d",
        "-node-meta",
        "k1:v1",
        "--node-meta=k2:v2:with-colon",
        "-hcl",
        'node_meta { k3 = "v3" }',
        "-hcl",
        'datacenter = "h"',
    )
    assert cfg.retry_join == ["a", "b"]
    assert cfg.start_join == ["c", "d"]
    assert cfg.node_meta == {"k1": "v1", "k2": "v2:with-colon", "k3": "v3"}
    assert cfg.datacenter == "h"


def test_config_dir_and_config_file_share_one_ordered_list(write, tmp_path, load):
    f1 = write("f1.hcl", 'datacenter = "f1"\n')
    write("d/x.hcl", 'datacenter = "dir"\n')
    cfg = load("-config-dir", str(tmp_path / "d"), "-config-file", f1)
    assert cfg.datacenter == "f1"


def test_every_documented_flag_is_known():
    brief = [
        *("dev", "server", "bootstrap", "bootstrap-expect", "node", "node-id", "datacenter"),
        *("data-dir", "client", "bind", "advertise", "retry-join", "join", "retry-interval"),
        *("retry-max", "encrypt", "config-file", "config-dir", "config-format", "http-port"),
        *("https-port", "dns-port", "grpc-port", "server-port", "serf-lan-port"),
        *("serf-wan-port", "log-level", "log-json", "ui", "node-meta", "pid-file"),
        *("enable-script-checks", "enable-local-script-checks", "hcl", "disable-host-node-id"),
    ]
    assert set(brief) <= set(FLAGS)
    assert all(f"-{name}" in flags_help() for name in brief)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-nope"], "Unknown flag: -nope"),
        (["--http-port=abc"], 'Invalid value "abc" for flag -http-port: expected an integer'),
        (
            ["-http-port=70000"],
            'Invalid value "70000" for flag -http-port: ports.http: invalid port',
        ),
        (["-server=yes"], 'Invalid value "yes" for flag -server: expected true or false'),
        (["-node"], "Flag -node needs a value"),
        (["-retry-interval=5"], "for flag -retry-interval: retry_interval: time: missing unit"),
        (["-bind=not-an-ip"], "for flag -bind: bind_addr: invalid ip address"),
        (["-log-level=loud"], "for flag -log-level: log_level: must be one of"),
        (["-encrypt=c2hvcnQ="], "for flag -encrypt: encrypt: invalid key"),
        (["-config-format=yaml"], "-config-format must be either 'hcl' or 'json'"),
        (["positional"], "Unexpected argument 'positional'"),
        (["-hcl", "ports {"], "Error parsing -hcl fragment #1: HCL syntax error"),
        (["-hcl", "bogus = 1"], "Error parsing -hcl fragment #1: invalid config key bogus"),
    ],
)
def test_bad_flags_name_the_flag(argv, message, tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-data-dir", str(tmp_path), *argv])
    assert message in str(err.value)
