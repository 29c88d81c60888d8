"""`consulpy bench watch`: many blocking queries held by one agent, and how long a change
takes to reach them.

Two scenarios, each against a fresh `consulpy agent -dev` (its own process):

- ``same``: N watchers of one service's health (`/v1/health/service/web?index=..`); one check
  flips (a catalog register from critical to passing or back); the figure is the time from the
  flip being sent until each watcher is answered (p50/p99/max; max = the last one).
- ``keys``: N watchers of N distinct keys (`/v1/kv/watch/k<i>?index=..`); W writes one after
  another, each to one watched key; the figure is the time from the PUT being sent until that
  key's watcher is answered, and "spurious" counts watchers answered by a write to another key
  (it must be 0).

The watchers are held by a small C client (`watchclient.c`, built with `cc` on first use) with
one epoll loop, so the client is not the bottleneck and does not share Python's costs. Both
processes need one file descriptor per watcher: the bench raises RLIMIT_NOFILE for itself and
its children (root may raise the hard limit; others get at most their hard limit; see
docs/benchmarks.md).

    consulpy bench watch --scenario same -n 10000
    consulpy bench watch --scenario keys -n 20000 --writes 200
    consulpy bench watch --tree /path/to/other/checkout   # the same, against another tree
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from consulpy.bench.procs import cpu_seconds, http_json

BANNER_HTTP = re.compile(r"HTTP: (\d+\.\d+\.\d+\.\d+:\d+)")
CLIENT_SOURCE = Path(__file__).with_name("watchclient.c")
# Descriptors an agent needs besides its watchers (listeners, data files, gossip, RPC).
FD_SPARE = 200


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's RLIMIT_NOFILE (children inherit it) to `wanted` when allowed;
    returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # not root: the hard limit is the ceiling
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def build_client(workdir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("consulpy bench watch needs a C compiler (cc) for its client")
    out = workdir / "watchclient"
    subprocess.run([cc, "-O2", "-o", str(out), str(CLIENT_SOURCE)], check=True)
    return out


def start_agent(tree: Path | None) -> tuple[subprocess.Popen[str], str]:
    """A dev agent from `tree` (a checkout; None: this one), its HTTP address."""
    argv = [sys.executable, "-m", "consulpy", "agent", "-dev", "-bind=127.0.0.1"]
    argv += ["-client=127.0.0.1", "-http-port=0", "-server-port=0", "-serf-lan-port=0"]
    argv += ["-serf-wan-port=-1", "-dns-port=-1", "-grpc-port=-1", "-log-level=warn"]
    # Every watcher comes from one client IP: lift the per-client connection cap.
    argv += ["-hcl", "limits { http_max_conns_per_client = 0 }"]
    if tree is None:  # the checkout this module comes from
        tree = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
        cwd=str(tree),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = BANNER_HTTP.search(line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the agent did not start")


def wait_idle(pid: int, window: float = 0.3, budget: float = 0.01, timeout: float = 300) -> None:
    """Wait until the agent has taken in every watcher: a `window` in which it used less than
    `budget` CPU seconds (a benchmark heuristic; tests count waiters instead)."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - last < budget:
            return
        last = now
    raise SystemExit("the agent never went idle")


def register(addr: str, status: str) -> None:
    code, body = http_json(
        f"http://{addr}/v1/catalog/register",
        {
            "Node": "bench-node",
            "Address": "127.0.0.2",
            "Service": {"ID": "web1", "Service": "web", "Port": 8080},
            "Check": {"CheckID": "web-check", "ServiceID": "web1", "Status": status},
        },
        method="PUT",
        timeout=30,
    )
    if code != 200:
        raise SystemExit(f"catalog register failed: {code} {body}")


def run(client: Path, scenario: str, n: int, writes: int, tree: Path | None) -> dict[str, object]:
    agent, addr = start_agent(tree)
    host, port = addr.rsplit(":", 1)
    try:
        if scenario == "same":
            register(addr, "passing")
            argv = [str(client), host, port, "same", str(n), "5m", "/v1/health/service/web"]
        else:
            argv = [str(client), host, port, "keys", str(n), "5m", "/v1/kv/watch/k", str(writes)]
        started = time.monotonic()
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdin is not None and holder.stdout is not None
        if holder.stdout.readline().strip() != "armed":
            raise SystemExit("the watch client did not park its connections")
        wait_idle(agent.pid)
        armed = time.monotonic() - started
        cpu_before = cpu_seconds(agent.pid)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        if scenario == "same":
            register(addr, "critical")
        out = holder.stdout.readline()
        cpu = cpu_seconds(agent.pid) - cpu_before
        holder.wait(60)
        result: dict[str, object] = json.loads(out)
        result["arm_seconds"] = round(armed, 1)
        # The agent's CPU from the change until the last answer, per answered watcher: a
        # figure that a busy machine disturbs less than the wall-clock ones.
        answers = result.get("answered", result.get("writes", 1))
        result["agent_cpu_us_per_answer"] = round(cpu * 1e6 / max(int(answers), 1))  # type: ignore[call-overload]
        return result
    finally:
        agent.kill()
        agent.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="consulpy bench watch")
    parser.add_argument("--scenario", choices=("same", "keys", "both"), default="both")
    parser.add_argument("-n", type=int, default=0, help="watchers (same: 10000, keys: 20000)")
    parser.add_argument("--writes", type=int, default=200, help="writes in the keys scenario")
    parser.add_argument(
        "--tree",
        action="append",
        type=Path,
        default=[],
        help="also run a dev agent from this checkout (e.g. the tree before a change)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = parser.parse_args(argv)
    scenarios = ("same", "keys") if args.scenario == "both" else (args.scenario,)
    wanted = max(args.n or 20000, 1000) + FD_SPARE
    limit = raise_fd_limit(wanted)
    trees: list[Path | None] = [*args.tree, None]
    summary: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="consulpy-bench-watch-") as tmp:
        client = build_client(Path(tmp))
        for scenario in scenarios:
            n = args.n or (10000 if scenario == "same" else 20000)
            if n + FD_SPARE > limit:
                # The agent and the client each hold one descriptor per watcher.
                print(
                    f"RLIMIT_NOFILE is {limit} and cannot be raised here: "
                    f"{limit - FD_SPARE} watchers instead of {n}",
                    file=sys.stderr,
                )
                n = limit - FD_SPARE
            for tree in trees:
                result = run(client, scenario, n, args.writes, tree)
                result["scenario"] = scenario
                result["tree"] = str(tree) if tree is not None else "this"
                summary.append(result)
                if not args.json:
                    print(_line(result), flush=True)
    if args.json:
        print(json.dumps(summary))
    return 0


def _line(r: dict[str, object]) -> str:
    what = (
        f"{r['watchers']} watchers of one service, one check flip"
        if r["scenario"] == "same"
        else f"{r['watchers']} watchers of distinct keys, {r['writes']} writes, "
        f"spurious wakeups {r['spurious']}"
    )
    return (
        f"[{r['tree']}] {what}: "
        + (f"first {r['first_ms']} ms, " if "first_ms" in r else "")
        + f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
        f"max {r['max_ms']} ms; agent CPU {r['agent_cpu_us_per_answer']} us per answer "
        f"(armed in {r['arm_seconds']} s)"
    )
