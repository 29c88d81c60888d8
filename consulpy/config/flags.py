"""Command-line flags of `consulpy agent`, parsed the way Go's `flag` package does.

Both `-name` and `--name` work, as do `-name=value` and `-name value`; a boolean flag takes
only `-name` or `-name=true|false`. Each flag sets one config key; the loader checks the value
with the same schema as files, so a flag and a file key can never disagree on meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consulpy.config.errors import ConfigError
from consulpy.util.goquote import go_quote


@dataclass(frozen=True)
class Flag:
    """One agent flag: its value kind, the config key it sets, and a help line."""

    kind: str  # bool | str | int | duration | list | map | meta
    key: str  # dotted config key path ("" for meta flags)
    help: str


FLAGS: dict[str, Flag] = {
    "advertise": Flag("str", "advertise_addr", "Sets the advertise address to use."),
    "advertise-wan": Flag("str", "advertise_addr_wan", "Address to advertise on the WAN."),
    "allow-write-http-from": Flag(
        "list", "http_config.allow_write_http_from", "CIDR allowed to call write endpoints."
    ),
    "alt-domain": Flag("str", "alt_domain", "Alternate domain for the DNS interface."),
    "auto-reload-config": Flag("bool", "auto_reload_config", "Reload config files on change."),
    "bind": Flag("str", "bind_addr", "Sets the bind address for cluster communication."),
    "bootstrap": Flag("bool", "bootstrap", "Sets server to bootstrap mode."),
    "bootstrap-expect": Flag(
        "int", "bootstrap_expect", "Servers to wait for before bootstrapping."
    ),
    "check_output_max_size": Flag("int", "check_output_max_size", "Max output size of checks."),
    "client": Flag("str", "client_addr", "Address(es) for HTTP, HTTPS, DNS and gRPC."),
    "config-dir": Flag("meta", "", "Directory of .json/.hcl config files. Repeatable."),
    "config-file": Flag("meta", "", "A config file (.json or .hcl). Repeatable."),
    "config-format": Flag("meta", "", "Read config files as 'hcl' or 'json' whatever their name."),
    "data-dir": Flag("str", "data_dir", "Path to a data directory to store agent state."),
    "datacenter": Flag("str", "datacenter", "Datacenter of the agent."),
    "default-query-time": Flag("duration", "default_query_time", "Default blocking query wait."),
    "dev": Flag("meta", "", "Starts the agent in development mode."),
    "disable-host-node-id": Flag(
        "bool", "disable_host_node_id", "Use a random node ID, not one derived from the host."
    ),
    "disable-keyring-file": Flag("bool", "disable_keyring_file", "Do not persist the keyring."),
    "dns-port": Flag("int", "ports.dns", "DNS port to use."),
    "domain": Flag("str", "domain", "Domain of the DNS interface."),
    "enable-local-script-checks": Flag(
        "bool", "enable_local_script_checks", "Run script checks from config files."
    ),
    "enable-script-checks": Flag("bool", "enable_script_checks", "Run script checks."),
    "encrypt": Flag("str", "encrypt", "Gossip encryption key (base64)."),
    "event-loop": Flag(
        "str", "event_loop", "Event loop: auto (uvloop when installed), uvloop or asyncio."
    ),
    "grpc-port": Flag("int", "ports.grpc", "gRPC (xDS) port; -1 disables it."),
    "grpc-tls-port": Flag("int", "ports.grpc_tls", "gRPC-TLS port; -1 disables it."),
    "hcl": Flag("meta", "", "An HCL config fragment. Repeatable."),
    "http-port": Flag("int", "ports.http", "HTTP API port; -1 disables it."),
    "https-port": Flag("int", "ports.https", "HTTPS API port; -1 disables it."),
    "join": Flag("list", "start_join", "Agent to join at start. Repeatable."),
    "join-wan": Flag("list", "start_join_wan", "Server to join over the WAN at start. Repeatable."),
    "log-file": Flag("str", "log_file", "Path to the file the logs are written to."),
    "log-json": Flag("bool", "log_json", "Log in JSON."),
    "log-level": Flag("str", "log_level", "Log level: trace, debug, info, warn or error."),
    "log-rotate-bytes": Flag("int", "log_rotate_bytes", "Rotate the log file at this size."),
    "log-rotate-duration": Flag(
        "duration", "log_rotate_duration", "Rotate the log file this often."
    ),
    "log-rotate-max-files": Flag("int", "log_rotate_max_files", "Log file archives to keep."),
    "max-query-time": Flag("duration", "max_query_time", "Longest blocking query wait."),
    "node": Flag("str", "node_name", "Name of this node. Must be unique in the cluster."),
    "node-id": Flag("str", "node_id", "A UUID for this node."),
    "node-meta": Flag("map", "node_meta", "Node metadata as key:value. Repeatable."),
    "non-voting-server": Flag("bool", "non_voting_server", "Deprecated: use -read-replica."),
    "pid-file": Flag("str", "pid_file", "Path to file to store the agent PID."),
    "primary-gateway": Flag("list", "primary_gateways", "Primary datacenter mesh gateway."),
    "protocol": Flag("int", "protocol", "RPC protocol version."),
    "raft-protocol": Flag("int", "raft_protocol", "Raft protocol version (3)."),
    "read-replica": Flag("bool", "read_replica", "Server that does not vote."),
    "recursor": Flag("list", "recursors", "Upstream DNS server. Repeatable."),
    "rejoin": Flag("bool", "rejoin_after_leave", "Rejoin the cluster even after leaving it."),
    "retry-interval": Flag("duration", "retry_interval", "Time between join attempts."),
    "retry-interval-wan": Flag("duration", "retry_interval_wan", "Time between WAN join attempts."),
    "retry-join": Flag("list", "retry_join", "Agent to join, retrying. Repeatable."),
    "retry-join-wan": Flag("list", "retry_join_wan", "Server to join over the WAN. Repeatable."),
    "retry-max": Flag("int", "retry_max", "Join attempts before giving up (0: forever)."),
    "retry-max-wan": Flag("int", "retry_max_wan", "WAN join attempts (0: forever)."),
    "segment": Flag("str", "segment", "Network segment to join (Enterprise)."),
    "serf-lan-allowed-cidrs": Flag(
        "list", "serf_lan_allowed_cidrs", "Network allowed to gossip on the LAN. Repeatable."
    ),
    "serf-lan-bind": Flag("str", "serf_lan", "Address to bind the LAN gossip listeners to."),
    "serf-lan-port": Flag("int", "ports.serf_lan", "LAN gossip port."),
    "serf-wan-allowed-cidrs": Flag(
        "list", "serf_wan_allowed_cidrs", "Network allowed to gossip on the WAN. Repeatable."
    ),
    "serf-wan-bind": Flag("str", "serf_wan", "Address to bind the WAN gossip listeners to."),
    "serf-wan-port": Flag("int", "ports.serf_wan", "WAN gossip port; -1 disables it."),
    "server": Flag("bool", "server", "Run as a server."),
    "server-port": Flag("int", "ports.server", "Server RPC and Raft port."),
    "syslog": Flag("bool", "enable_syslog", "Log to syslog."),
    "ui": Flag("bool", "ui_config.enabled", "Enable the built-in web UI."),
    "ui-content-path": Flag("str", "ui_config.content_path", "URL path of the web UI."),
    "ui-dir": Flag("str", "ui_config.dir", "Directory with web UI files."),
}

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass
class FlagSource:
    """The raw config fragment one flag occurrence sets, and how to name it in errors."""

    flag: str
    raw: str
    data: dict[str, Any]


@dataclass
class AgentFlags:
    """What `consulpy agent` was told on its command line."""

    dev: bool = False
    config_paths: list[str] = field(default_factory=list)
    config_format: str | None = None
    hcl: list[str] = field(default_factory=list)
    list_sources: list[FlagSource] = field(default_factory=list)
    value_sources: list[FlagSource] = field(default_factory=list)


def parse_flags(argv: list[str]) -> AgentFlags:
    """Parse agent flags; ConfigError names the flag that is wrong."""
    result = AgentFlags()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            if i < len(args):
                raise ConfigError(f"Unexpected argument {args[i]!r}: the agent takes only flags")
            break
        if not arg.startswith("-") or arg == "-":
            raise ConfigError(f"Unexpected argument {arg!r}: the agent takes only flags")
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, has_value, value = body.partition("=")
        flag = FLAGS.get(name)
        if flag is None or not name:
            raise ConfigError(f"Unknown flag: -{name}")
        is_bool = flag.kind == "bool" or name == "dev"
        if not has_value:
            if is_bool:
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise ConfigError(f"Flag -{name} needs a value")
        _apply(result, name, flag, value)
    return result


def _apply(result: AgentFlags, name: str, flag: Flag, value: str) -> None:
    if name == "dev":
        result.dev = _bool(name, value)
        return
    if name in ("config-file", "config-dir"):
        result.config_paths.append(value)
        return
    if name == "config-format":
        if value not in ("hcl", "json"):
            raise ConfigError("-config-format must be either 'hcl' or 'json'")
        result.config_format = value
        return
    if name == "hcl":
        result.hcl.append(value)
        return
    typed: Any
    if flag.kind == "bool":
        typed = _bool(name, value)
    elif flag.kind == "int":
        try:
            typed = int(value, 0)
        except ValueError:
            raise ConfigError(
                f"Invalid value {go_quote(value)} for flag -{name}: expected an integer"
            ) from None
    elif flag.kind == "list":
        typed = [value]
    elif flag.kind == "map":
        key, _, item = value.partition(":")
        typed = {key: item}
    else:
        typed = value
    source = FlagSource(name, value, _nest(flag.key, typed))
    (result.list_sources if flag.kind == "list" else result.value_sources).append(source)


def _bool(name: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"Invalid value {go_quote(value)} for flag -{name}: expected true or false")


def _nest(path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    data: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        data = {part: data}
    return data


def flags_help() -> str:
    """One line per flag, for `consulpy agent -help`."""
    width = max(len(n) for n in FLAGS) + 3
    return "\n".join(f"  -{name:<{width}}{flag.help}" for name, flag in sorted(FLAGS.items()))
