"""`consulpy dev-cluster up|down|status|env|kill`: docker-compose.yml's cluster without docker.

Three servers, two client agents, the `api` and `web` demo services with their Envoy sidecars
and the config entries of configs/intentions, as local processes on 127.0.0.1, from the same
configs/ (see consulpy/devcluster/). `up -dc2` adds the second datacenter of compose's `dc2`
profile: a server, a client, another `api` and a mesh gateway in each datacenter.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

USAGE = """Usage: consulpy dev-cluster <command> [options]

  Runs the topology of docker-compose.yml (3 servers, 2 clients, the api and web demo
  services with Envoy sidecars, intentions) as local processes on 127.0.0.1, configured from
  the same configs/ directory. Ports are chosen by the OS and kept in <data-dir>/cluster.json.

Commands:
    up       Start whatever is not running; return once the cluster serves
    down     Stop everything (or the NAMEs given): SIGTERM, then SIGKILL after -timeout
    status   Show the processes, the members and the leader (exit 1 unless all is well)
    env      Print shell exports for this cluster: eval "$(consulpy dev-cluster env)"
    kill     Send a signal (default SIGKILL) to the NAMEs given, like `docker compose kill`

Options (all commands):
    -data-dir=<path>     Where state, data and logs live (env CONSULPY_DEV_DIR;
                         default ./.consulpy-dev)
up:
    -dc2                 Also run a second datacenter, dc2 (a server, a client, an api
                         instance and its sidecar), a mesh gateway in each datacenter, and
                         dc1's api failing over to dc2's (docs/multi-dc.md). Remembered:
                         later commands act on both datacenters
    -configs-dir=<path>  The configs directory (default: the one shipped with consulpy)
    -timeout=<duration>  How long to wait for the cluster to serve (default 90s)
down:
    -timeout=<duration>  Grace period before SIGKILL (default 20s)
    -purge               Also delete the data directory (only when stopping everything)
kill:
    -signal=<name|num>   Signal to send (default KILL)
"""


def _duration(text: str) -> float:
    from consulpy.config.durations import parse_duration

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError as exc:
        raise argparse.ArgumentTypeError(f"unknown signal {text!r}") from exc


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"consulpy dev-cluster {command}", allow_abbrev=False)
    p.add_argument(
        "-data-dir",
        "--data-dir",
        dest="data_dir",
        default=os.environ.get("CONSULPY_DEV_DIR", ""),
    )
    if command == "up":
        p.add_argument("-configs-dir", "--configs-dir", dest="configs_dir", default=None)
        p.add_argument("-timeout", "--timeout", type=_duration, default=90.0)
        p.add_argument("-dc2", "--dc2", action="store_true")
    if command == "down":
        p.add_argument("-timeout", "--timeout", type=_duration, default=20.0)
        p.add_argument("-purge", "--purge", action="store_true")
    if command == "kill":
        p.add_argument("-signal", "--signal", type=_signal, default=int(signal.SIGKILL))
    if command in ("down", "kill"):
        p.add_argument("names", nargs="*", metavar="NAME")
    return p


def main(argv: list[str]) -> int:
    commands = ("up", "down", "status", "env", "kill")
    if not argv or argv[0] in ("-h", "-help", "--help") or argv[0] not in commands:
        print(
            USAGE, file=sys.stdout if argv and argv[0] in ("-h", "-help", "--help") else sys.stderr
        )
        return 0 if argv and argv[0] in ("-h", "-help", "--help") else 1
    command, rest = argv[0], argv[1:]
    args = _parser(command).parse_args(rest)

    from consulpy.devcluster import DEFAULT_DATA_DIR, DevCluster, DevClusterError

    try:
        cluster = DevCluster(
            args.data_dir or DEFAULT_DATA_DIR,
            getattr(args, "configs_dir", None),
            datacenters=2 if getattr(args, "dc2", False) else None,
        )
        if command == "up":
            cluster.up(timeout=args.timeout)
            return 0
        if command == "down":
            cluster.down(args.names, timeout=args.timeout, purge=args.purge)
            return 0
        if command == "status":
            return 0 if cluster.status() else 1
        if command == "env":
            if not cluster.exists:
                raise DevClusterError(f"no dev cluster in {cluster.data_dir}")
            for key, value in cluster.env().items():
                print(f"export {key}={value}")
            return 0
        if not args.names:
            raise DevClusterError("kill: name at least one process (see `status`)")
        cluster.kill(args.names, args.signal)
        return 0
    except DevClusterError as exc:
        print(f"==> dev-cluster {command}: {exc}", file=sys.stderr)
        if command == "up":
            print(
                "==> What started is left running: see `consulpy dev-cluster status`, stop it "
                "with `consulpy dev-cluster down`.",
                file=sys.stderr,
            )
        return 1
