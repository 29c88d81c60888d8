"""Entry point of the `consulpy` command: dispatches to a subcommand module.

Subcommands are imported lazily so that `consulpy kv get` does not pay for importing the
server, Raft and gossip code.
"""

from __future__ import annotations

import importlib
import sys

from consulpy.version import CONSUL_COMPAT_VERSION, __version__

# name -> (module, one-line help). Each module exposes `main(argv: list[str]) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "agent": ("consulpy.cli.agent", "Runs a consulpy agent"),
    "kv": ("consulpy.cli.kv", "Interact with the key-value store"),
    "monitor": ("consulpy.cli.monitor", "Stream logs from a consulpy agent"),
    "members": ("consulpy.cli.members", "Lists the members of a consulpy cluster"),
    "rtt": ("consulpy.cli.rtt", "Estimates network round trip time between nodes"),
    "validate": ("consulpy.cli.validate", "Validate config files/directories"),
    "version": ("consulpy.cli.main", "Prints the consulpy version"),
    "catalog": ("consulpy.cli.catalog:catalog_main", "Interact with the catalog"),
    "services": ("consulpy.cli.catalog:services_main", "Interact with services"),
    "maint": ("consulpy.cli.catalog:maint_main", "Controls node or service maintenance mode"),
    "reload": ("consulpy.cli.catalog:reload_main", "Triggers the agent to reload configuration"),
    "operator": ("consulpy.cli.operator:operator_main", "Provides cluster-level tools"),
    "info": ("consulpy.cli.operator:info_main", "Provides debugging information for operators"),
    "snapshot": ("consulpy.cli.operator:snapshot_main", "Saves and restores snapshots"),
    "join": ("consulpy.cli.operator:join_main", "Tell the agent to join a cluster"),
    "leave": ("consulpy.cli.operator:leave_main", "Gracefully leaves the cluster and shuts down"),
    "force-leave": ("consulpy.cli.operator:force_leave_main", "Forces a member to leave"),
    "keygen": ("consulpy.cli.operator:keygen_main", "Generates a new gossip encryption key"),
    "keyring": ("consulpy.cli.operator:keyring_main", "Manages gossip layer encryption keys"),
    "event": ("consulpy.cli.operator:event_main", "Fire a new event"),
    "intention": ("consulpy.cli.connect:intention_main", "Interact with Connect intentions"),
    "connect": ("consulpy.cli.connect:connect_main", "Interact with Consul Connect"),
    "config": ("consulpy.cli.connect:config_main", "Interact with config entries"),
    "acl": ("consulpy.cli.acl:acl_main", "Interact with Consul's ACLs"),
    "login": ("consulpy.cli.acl:login_main", "Login to Consul using an auth method"),
    "logout": ("consulpy.cli.acl:logout_main", "Destroy a Consul token created with login"),
    "bench": ("consulpy.bench.main", "Benchmarks (kv, raft, gossip, xds)"),
    "demo": ("consulpy.cli.demo", "Runs the dev cluster's demo services (api, web)"),
    "watch": ("consulpy.cli.watch", "Watch for changes in Consul"),
    "lock": ("consulpy.cli.lock", "Execute a command holding a lock"),
    "dev-cluster": ("consulpy.cli.devcluster", "Runs the dev cluster as local processes"),
    "tls": ("consulpy.cli.tls", "Builtin helpers for creating CAs and certificates"),
}


# structlog imports these, when installed, for its console renderer's colours and tracebacks;
# the agent renders its own lines (consulpy/log.py), so a server process does not load them
# (rich with pygments is about 3.6 MiB of RSS; issue 21 goal 3).
# greenlet likewise, for its greenlet-local context (the agent runs on asyncio; 1 MiB with the
# libstdc++ it loads).
UNUSED_BY_AGENT = ("rich", "colorama", "better_exceptions", "greenlet")


# glibc arenas an agent's allocations may spread over (set before any thread starts): one,
# so that malloc_trim can give back what worker threads freed (a thread arena's free top
# stays resident: 23-29 MiB after a snapshot of 100,000 x 1 KiB). The MALLOC_ARENA_MAX
# environment variable overrides it (docs/benchmarks.md, bench mem).
AGENT_MALLOC_ARENAS = 1


def _limit_arenas() -> None:
    from consulpy.raft.heap import limit_arenas

    limit_arenas(AGENT_MALLOC_ARENAS)


def _usage() -> str:
    lines = [
        "Usage: consulpy [--version] [--help] <command> [<args>]",
        "",
        "Available commands are:",
    ]
    for name, (_, help_text) in sorted(COMMANDS.items()):
        lines.append(f"    {name:<12}{help_text}")
    return "\n".join(lines)


def version_main(argv: list[str]) -> int:
    print(f"consulpy v{__version__}")
    print(f"Consul API compatibility: {CONSUL_COMPAT_VERSION}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        print(_usage(), file=sys.stderr if not args else sys.stdout)
        return 1 if not args else 0
    if args[0] in ("-v", "-version", "--version"):
        return version_main([])
    name, rest = args[0], args[1:]
    if name == "version":
        return version_main(rest)
    entry = COMMANDS.get(name)
    if entry is None:
        print(f"consulpy: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 1
    if name == "agent":
        for unused in UNUSED_BY_AGENT:
            sys.modules.setdefault(unused, None)  # type: ignore[arg-type]  # ImportError
        _limit_arenas()
    module_name, _, func_name = entry[0].partition(":")
    func = getattr(importlib.import_module(module_name), func_name or "main")
    try:
        return int(func(rest) or 0)
    except KeyboardInterrupt:
        return 130
