"""`consulpy bench kv`: KV PUT and GET throughput and latency, measured with wrk.

A Python load generator saturates near 1k requests/s on the machines we run on, so the load
comes from Debian's `wrk` driven by the Lua scripts in `consulpy/bench/wrk/`. Each measurement
is one wrk run of `--duration` seconds with N connections (= clients); every (target, op,
clients) cell is run `--repeats` times, interleaved across targets so that a noisy neighbour hurts
them alike, the order of the targets rotated by one place per repeat so that none is favoured by
its position, and the medians are reported. wrk's own CPU use is reported next to each figure so a
reader can tell whether the load generator, rather than the target, was the limit.

Output: one JSON object per line on stdout (a result per target/op/clients, then the ratios
target/reference); progress and a human-readable table on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import aiohttp

from consulpy.bench.procs import (
    Target,
    free_ports,
    http_json,
    run_measured,
    sigterm_as_interrupt,
    spawn,
    wait_until,
)
from consulpy.bench.refservers import start_aiohttp, start_etcd, wait_for_consul_leader

WRK = "/usr/bin/wrk"
WRK_TIMEOUT_S = 10
OPS = ("put", "get")
PRELOAD_CONCURRENCY = 32


# --- targets -------------------------------------------------------------------------------


def dev_agent_argv(
    http_port: int,
    server_port: int,
    lan_port: int,
    wan_port: int,
    launcher: list[str] | None = None,
) -> list[str]:
    """The command line of a consulpy dev agent listening only where the benchmark needs it."""
    return [
        *(launcher or [sys.executable, "-m", "consulpy"]),
        "agent",
        "-dev",
        "-node=bench",
        f"-http-port={http_port}",
        "-dns-port=-1",
        "-grpc-port=-1",
        f"-server-port={server_port}",
        f"-serf-lan-port={lan_port}",
        f"-serf-wan-port={wan_port}",
    ]


@dataclass(frozen=True)
class Variant:
    """Which consulpy to start: from which source tree (None: the one running this benchmark),
    with ACLs on or not, and the suffix of its name (`consulpy-3-base`, `consulpy-3-acl`)."""

    suffix: str = ""
    tree: Path | None = None
    acl: bool = False
    logstore: str = "wal"  # raft_logstore.backend
    telemetry: bool = True  # False: every metric filtered out and Prometheus off
    loop: str = ""  # "uvloop" | "asyncio": the event loop, forced (""; the tree's default)

    def launcher(self) -> list[str]:
        """How to start `consulpy` from this variant's tree. A forced loop is set through
        $CONSULPY_EVENT_LOOP (see env) and, for uvloop, also as the asyncio policy, so a tree
        older than the `event_loop` setting (a base) runs on uvloop too: like with like."""
        if self.loop != "uvloop":
            return [sys.executable, "-m", "consulpy"]
        return [sys.executable, "-c", UVLOOP_LAUNCHER]

    def env(self) -> dict[str, str] | None:
        if not self.loop:
            return None
        return {**os.environ, EVENTLOOP_ENV: self.loop}

    def extra_argv(self, management: str) -> list[str]:
        """The flags this variant adds to every agent it starts."""
        out = [f"-hcl={_acl_hcl(management)}"] if self.acl else []
        if not self.telemetry:
            out.append(f"-hcl={NO_TELEMETRY_HCL}")
        return out

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}" if self.suffix else base


THIS = Variant()
LOOPS = ("uvloop", "asyncio")


def with_loop(variant: Variant, loop: str) -> Variant:
    """The same variant on a forced event loop, its name suffixed with the loop."""
    suffix = f"{variant.suffix}-{loop}" if variant.suffix else loop
    return replace(variant, suffix=suffix, loop=loop)


EVENTLOOP_ENV = "CONSULPY_EVENT_LOOP"  # consulpy.util.eventloop.ENV (older trees ignore it)
UVLOOP_LAUNCHER = (
    "import runpy, uvloop; uvloop.install(); "
    "runpy.run_module('consulpy', run_name='__main__', alter_sys=True)"
)
# With --telemetry-off-variant: nothing recorded (each record stops at the series lookup that
# finds it blocked) and no Prometheus view, to price the metrics against the same build.
NO_TELEMETRY_HCL = 'telemetry { filter_default = false prometheus_retention_time = "0s" }'
# With --acl-variant: default deny, and the benchmark's token may write bench/ but nothing
# under bench/kv/private/ (a prefix rule and a deeper deny, so resolution has work to do).
ACL_POLICY_RULES = (
    'key_prefix "bench/" { policy = "write" }\nkey_prefix "bench/kv/private/" { policy = "deny" }\n'
)


def _acl_hcl(management: str) -> str:
    return (
        'acl { enabled = true default_policy = "deny" '
        f'tokens {{ initial_management = "{management}" }} }}'
    )


def _acl_call(addr: str, path: str, body: dict, token: str) -> tuple[int, object]:
    req = urllib.request.Request(
        f"http://{addr}{path}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"X-Consul-Token": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:
        return 0, None


def scoped_token(target: Target, management: str) -> str:
    """Create the benchmark's policy and a token with only it (once the leader has created
    the management token); returns the token's secret."""
    addr = target.addrs[0]
    policy = {"Name": "bench-kv", "Rules": ACL_POLICY_RULES}
    wait_until(
        lambda: _acl_call(addr, "/v1/acl/policy", policy, management)[0] == 200,
        30.0,
        "the ACL policy to be created",
        target.procs,
    )
    status, token = _acl_call(
        addr, "/v1/acl/token", {"Policies": [{"Name": "bench-kv"}]}, management
    )
    if status != 200 or not isinstance(token, dict):
        raise RuntimeError(f"creating the benchmark's ACL token failed: {status} {token!r}")
    return str(token["SecretID"])


def spawn_dev(workdir: Path, variant: Variant = THIS) -> Target:
    """Start a consulpy dev agent subprocess; returns once it has elected itself leader."""
    http_port, server_port, lan_port, wan_port = free_ports(4)
    argv = dev_agent_argv(http_port, server_port, lan_port, wan_port, variant.launcher())
    management = str(uuid.uuid4())
    argv += variant.extra_argv(management)
    name = variant.name("consulpy-dev")
    proc = spawn(name, argv, workdir / f"{name}.log", cwd=variant.tree, env=variant.env())
    target = Target(name=name, api="consul", addrs=[f"127.0.0.1:{http_port}"])
    target.procs.append(proc)
    try:
        wait_for_consul_leader(target.addrs[0], [proc])
        if variant.acl:
            target.token = scoped_token(target, management)
    except BaseException:
        target.stop()
        raise
    return target


def spawn_cluster(workdir: Path, servers: int = 3, variant: Variant = THIS) -> Target:
    """Start a `servers`-server consulpy cluster (real Raft, fsync on, raft_multiplier 1) and
    return it with the leader's HTTP address first (wrk drives addrs[0]). `variant` says
    which tree, whether ACLs are on, and the log store ("boltdb": the previous SQLite one)."""
    ports = [free_ports(3) for _ in range(servers)]  # http, server, serf_lan per server
    name = variant.name(f"consulpy-{servers}")
    target = Target(name=name, api="consul", addrs=[])
    management = str(uuid.uuid4())
    acl = variant.extra_argv(management)
    # boltdb: the previous (SQLite) log store, to compare the stores in one run
    store = (
        []
        if variant.logstore == "wal"
        else [f'-hcl=raft_logstore {{ backend = "{variant.logstore}" }}']
    )
    for i, (http_port, server_port, lan_port) in enumerate(ports):
        data_dir = workdir / f"{name}-s{i}"
        argv = [
            *variant.launcher(),
            "agent",
            "-server",
            f"-bootstrap-expect={servers}",
            f"-node=bench-s{i}",
            f"-data-dir={data_dir}",
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            f"-http-port={http_port}",
            f"-server-port={server_port}",
            f"-serf-lan-port={lan_port}",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            "-grpc-port=-1",
            "-log-level=warn",
            "-hcl=performance { raft_multiplier = 1 }",
            *acl,
            *store,
            *(f"-retry-join=127.0.0.1:{p[2]}" for j, p in enumerate(ports) if j != i),
        ]
        target.procs.append(
            spawn(
                f"{name}-s{i}",
                argv,
                workdir / f"{name}-s{i}.log",
                cwd=variant.tree,
                env=variant.env(),
            )
        )
        target.addrs.append(f"127.0.0.1:{http_port}")
        target.cleanups.append(lambda d=data_dir: shutil.rmtree(d, ignore_errors=True))
    try:
        for addr in target.addrs:
            wait_for_consul_leader(addr, target.procs)
        _, leader = http_json(f"http://{target.addrs[0]}/v1/status/leader")
        for i, (_, server_port, _) in enumerate(ports):
            if leader == f"127.0.0.1:{server_port}":
                target.addrs.insert(0, target.addrs.pop(i))
                break
        if variant.acl:
            target.token = scoped_token(target, management)
    except BaseException:
        target.stop()
        raise
    return target


# How to start each kind of target; each returns a Target with its HTTP addresses.
SPAWNERS: dict[str, Callable[[Path, Variant], Target]] = {
    "dev": spawn_dev,
    "cluster": lambda workdir, variant: spawn_cluster(workdir, variant=variant),
    # one server with a data dir (fsync on): the counterpart of a 1-member etcd
    "server": lambda workdir, variant: spawn_cluster(workdir, servers=1, variant=variant),
}

REFERENCES: dict[str, Callable[[Path], Target]] = {
    "aiohttp": start_aiohttp,
    "etcd": lambda workdir: start_etcd(3, workdir),
    "etcd1": lambda workdir: start_etcd(1, workdir),
    # the same 3-server cluster on the previous (SQLite) Raft log store: before/after in one run
    "consulpy-sqlite": lambda workdir: spawn_cluster(
        workdir, variant=Variant(suffix="sqlite", logstore="boltdb")
    ),
}


def running_agent(addr: str, prefix: str, token: str = "") -> Target:
    """An agent somebody else started: we only remove the keys the benchmark wrote."""
    wait_for_consul_leader(addr, [], timeout=10.0)
    target = Target(name="consulpy", api="consul", addrs=[addr])
    query = f"?recurse&token={urllib.parse.quote(token)}" if token else "?recurse"
    target.cleanups.append(
        lambda: http_json(f"http://{addr}/v1/kv/{prefix}{query}", method="DELETE", timeout=30)
    )
    return target


# --- workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What every wrk run does, shared by all targets so their figures compare."""

    keys: int
    value_size: int
    spread: str
    prefix: str
    raw: bool
    duration_s: int
    seed: int
    token: str = ""  # X-Consul-Token of every consul request ("" = none)

    def headers(self, target: Target | None = None) -> dict[str, str]:
        token = self.token_for(target)
        return {"X-Consul-Token": token} if token else {}

    def token_for(self, target: Target | None) -> str:
        """A target's own token (an --acl-variant), else --token."""
        if target is not None and target.token is not None:
            return target.token
        return self.token

    def value(self) -> bytes:
        return b"v" * self.value_size  # the same bytes the Lua scripts send

    def key(self, i: int) -> str:
        return f"{self.prefix}{i}"


async def _preload(target: Target, work: Workload) -> None:
    addr = target.addrs[0]
    value = work.value()
    limit = asyncio.Semaphore(PRELOAD_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)

    async def put(session: aiohttp.ClientSession, i: int) -> None:
        key = work.key(i)
        async with limit:
            if target.api == "etcd":
                body = {
                    "key": base64.b64encode(key.encode()).decode(),
                    "value": base64.b64encode(value).decode(),
                }
                resp = await session.post(f"http://{addr}/v3/kv/put", json=body)
            else:
                resp = await session.put(
                    f"http://{addr}/v1/kv/{key}", data=value, headers=work.headers(target)
                )
            async with resp:
                text = await resp.text()
                if resp.status != 200 or (target.api == "consul" and text.strip() != "true"):
                    raise RuntimeError(
                        f"preloading {key} into {target.name} failed: {resp.status} {text!r}"
                    )

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(put(session, i) for i in range(work.keys)))


def preload(target: Target, work: Workload) -> None:
    """Write every key of the key space once, so that GETs find what they ask for."""
    asyncio.run(_preload(target, work))


# --- one wrk run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One wrk run's figures. `errors` = non-2xx or bad-body answers plus socket errors."""

    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    loadgen_cpu_pct: float
    target_cpu_pct: float | None


def install_scripts(workdir: Path) -> Path:
    """Copy the packaged Lua scripts into a real directory (wrk needs paths; they require each
    other by path), wherever and however the package is installed."""
    dest = workdir / "wrk"
    dest.mkdir(exist_ok=True)
    packaged = resources.files("consulpy.bench") / "wrk"
    found = packaged.iterdir() if packaged.is_dir() else []
    scripts = [e for e in found if e.name.endswith(".lua")]
    if not scripts:
        raise RuntimeError(
            "the wrk Lua scripts are missing from the installed consulpy package "
            "(package data consulpy/bench/wrk/*.lua)"
        )
    for entry in scripts:
        (dest / entry.name).write_bytes(entry.read_bytes())
    return dest


def wrk_argv(
    scripts: Path, target: Target, op: str, clients: int, work: Workload, seed: int
) -> list[str]:
    threads = min(clients, 2)
    args = [
        f"keys={work.keys}",
        f"spread={work.spread}",
        f"size={work.value_size}",
        f"prefix={work.prefix}",
        f"threads={threads}",
        f"seed={seed}",
        f"raw={int(work.raw)}",
    ]
    token = work.token_for(target)
    if token and target.api == "consul":
        args.append(f"token={token}")
    return [
        WRK,
        f"-t{threads}",
        f"-c{clients}",
        f"-d{work.duration_s}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        f"-s{scripts / f'{target.api}_{op}.lua'}",
        f"http://{target.addrs[0]}/",
        "--",
        *args,
    ]


def parse_wrk_output(text: str) -> dict[str, float]:
    """The `KVBENCH {json}` line the scripts' done() prints."""
    for line in text.splitlines():
        if line.startswith("KVBENCH "):
            data: dict[str, float] = json.loads(line.removeprefix("KVBENCH "))
            return data
    raise RuntimeError(f"wrk printed no KVBENCH result line; its output:\n{text}")


def rotated(targets: Sequence[Target], repeat: int) -> list[Target]:
    """The targets in the order of one repeat: rotated by one place per repeat, so that no
    target always runs first (after the idle preload) or last (after the others warmed the
    machine); with as many repeats as targets each one holds every position once."""
    if not targets:
        return []
    k = repeat % len(targets)
    return [*targets[k:], *targets[:k]]


def run_wrk(
    scripts: Path, target: Target, op: str, clients: int, work: Workload, seed: int, workdir: Path
) -> Run:
    argv = wrk_argv(scripts, target, op, clients, work, seed)
    cpu_before = target.cpu_seconds()
    measured = run_measured(argv, workdir)
    cpu_after = target.cpu_seconds()
    if measured.returncode != 0:
        raise RuntimeError(
            f"wrk exited with {measured.returncode}: {' '.join(argv)}\n{measured.stdout}"
        )
    stats = parse_wrk_output(measured.stdout)
    duration_s = stats["duration_us"] / 1e6
    socket_errors = sum(
        int(stats[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    good = int(stats["requests"]) - int(stats["bad"])
    target_cpu = None
    if cpu_before is not None and cpu_after is not None:
        target_cpu = 100.0 * (cpu_after - cpu_before) / measured.wall_s
    return Run(
        ops_per_s=good / duration_s if duration_s > 0 else 0.0,
        p50_ms=stats["p50_us"] / 1000.0,
        p99_ms=stats["p99_us"] / 1000.0,
        errors=int(stats["bad"]) + socket_errors,
        loadgen_cpu_pct=100.0 * measured.cpu_s / measured.wall_s,
        target_cpu_pct=target_cpu,
    )


# --- summaries -----------------------------------------------------------------------------


def summarize(target: str, op: str, clients: int, runs: Sequence[Run], work: Workload) -> dict:
    """One result line: medians over the repeats (errors are summed: any error is a failure)."""
    target_cpu = [r.target_cpu_pct for r in runs if r.target_cpu_pct is not None]
    return {
        "bench": "kv",
        "kind": "result",
        "target": target,
        "op": op,
        "clients": clients,
        "ops_per_s": round(statistics.median(r.ops_per_s for r in runs), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 3),
        "errors": sum(r.errors for r in runs),
        "loadgen_cpu_pct": round(statistics.median(r.loadgen_cpu_pct for r in runs), 1),
        "target_cpu_pct": round(statistics.median(target_cpu), 1) if target_cpu else None,
        "repeats": len(runs),
        "duration_s": work.duration_s,
        "keys": work.keys,
        "value_size": work.value_size,
        "spread": work.spread,
    }


def ratio_lines(results: Sequence[dict], subject: str, references: Sequence[str]) -> list[dict]:
    """subject/reference for ops/s (below 1: slower) and p99 (above 1: slower)."""
    by_cell = {(r["target"], r["op"], r["clients"]): r for r in results}
    lines = []
    for ref in references:
        for (name, op, clients), mine in by_cell.items():
            theirs = by_cell.get((ref, op, clients))
            if name != subject or theirs is None:
                continue
            lines.append(
                {
                    "bench": "kv",
                    "kind": "ratio",
                    "target": subject,
                    "reference": ref,
                    "op": op,
                    "clients": clients,
                    "ops_per_s_ratio": _ratio(mine["ops_per_s"], theirs["ops_per_s"]),
                    "p99_ratio": _ratio(mine["p99_ms"], theirs["p99_ms"]),
                }
            )
    return lines


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(results: Sequence[dict], ratios: Sequence[dict]) -> str:
    # Columns as wide as the longest target name (variants such as -notelemetry are long).
    w = max([20, *(len(r["target"]) + 2 for r in results)])
    head = (
        f"{'target':<{w}}{'op':<5}{'clients':>8}{'ops/s':>11}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'errors':>8}{'wrk cpu%':>10}{'target cpu%':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r['target']:<{w}}{r['op']:<5}{r['clients']:>8}{r['ops_per_s']:>11.1f}"
            f"{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{r['errors']:>8}"
            f"{r['loadgen_cpu_pct']:>10.1f}{_fmt(r['target_cpu_pct'], '.1f'):>13}"
        )
    if ratios:
        labels = [f"{q['target']}/{q['reference']}" for q in ratios]
        lw = max([38, *(len(label) + 2 for label in labels)])
        lines += ["", f"{'ratio':<{lw}}{'op':<5}{'clients':>8}{'ops/s x':>10}{'p99 x':>10}"]
        for label, q in zip(labels, ratios, strict=True):
            lines.append(
                f"{label:<{lw}}{q['op']:<5}{q['clients']:>8}"
                f"{_fmt(q['ops_per_s_ratio'], '.3f'):>10}{_fmt(q['p99_ratio'], '.3f'):>10}"
            )
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------


def _csv(
    kind: Callable[[str], object], allowed: Sequence[str] | None = None
) -> Callable[[str], list]:
    """An argparse type for comma-separated values."""

    def parse(text: str) -> list:
        # Order kept, duplicates dropped: each cell is measured once per repeat.
        items = list(dict.fromkeys(kind(p.strip()) for p in text.split(",") if p.strip()))
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        bad = [i for i in items if allowed is not None and i not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(allowed)}")
        return items

    return parse


def _prefix(text: str) -> str:
    """Non-empty (the keys are deleted with ?recurse afterwards) and safe in a URL path."""
    if not re.fullmatch(r"[A-Za-z0-9._~/-]+", text):
        raise argparse.ArgumentTypeError("needs 1+ characters of A-Z a-z 0-9 . _ ~ / -")
    return text


def _tree(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", label) or label == "acl":
        raise argparse.ArgumentTypeError("expected LABEL=PATH with a label of A-Z a-z 0-9 _ . -")
    tree = Path(path).resolve()
    if not (tree / "consulpy" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(f"{tree} is not a consulpy source tree")
    return label, tree


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="consulpy bench kv",
        description="KV PUT/GET throughput and latency with wrk, against consulpy and references.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "-http-addr",
        "--http-addr",
        dest="http_addr",
        help="a running agent (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500)",
    )
    where.add_argument("--spawn", choices=sorted(SPAWNERS), help="start the target ourselves")
    p.add_argument(
        "--tree",
        action="append",
        default=[],
        type=_tree,
        metavar="LABEL=PATH",
        help="with --spawn: also start the same kind from the consulpy source tree at PATH "
        "(e.g. base=../base, a git worktree of an older commit), named <kind>-LABEL",
    )
    p.add_argument(
        "--acl-variant",
        action="store_true",
        help="with --spawn: also start the same kind with ACLs on (default deny), driven with "
        "a token scoped to bench/ (named <kind>-acl)",
    )
    p.add_argument(
        "--telemetry-off-variant",
        action="store_true",
        help="with --spawn: also start the same kind with every metric filtered out and "
        "Prometheus off (named <kind>-notelemetry): the ratio prices the metrics",
    )
    p.add_argument(
        "--loops",
        type=_csv(str, LOOPS),
        default=[],
        help="with --spawn: start every consulpy variant (this tree, each --tree) once per "
        "event loop listed (uvloop,asyncio), named <name>-<loop>; default: each tree's own",
    )
    p.add_argument(
        "--reference",
        type=_csv(str, sorted(REFERENCES)),
        default=[],
        help=f"comma-separated references to run too ({', '.join(sorted(REFERENCES))})",
    )
    p.add_argument(
        "--clients",
        type=_csv(_positive),
        default=[1, 32],
        help="comma-separated connection counts (default 1,32)",
    )
    p.add_argument("--ops", type=_csv(str, OPS), default=list(OPS), help="put,get (default both)")
    p.add_argument("--duration", type=_positive, default=10, help="seconds per run (default 10)")
    p.add_argument("--repeats", type=_positive, default=3, help="runs per cell (default 3)")
    p.add_argument("--keys", type=_positive, default=1000, help="key space size (default 1000)")
    p.add_argument("--value-size", type=int, default=128, help="PUT value bytes (default 128)")
    p.add_argument(
        "--spread",
        choices=["random", "sequential"],
        default="random",
        help="order keys are used in (default random)",
    )
    p.add_argument(
        "--prefix", type=_prefix, default="bench/kv/", help="key prefix (default bench/kv/)"
    )
    p.add_argument("--raw", action="store_true", help="GET with ?raw instead of the JSON list")
    p.add_argument("--seed", type=int, default=1, help="random key choice seed (default 1)")
    p.add_argument(
        "-token",
        "--token",
        dest="token",
        default=None,
        help="ACL token sent with every consulpy request (default: $CONSUL_HTTP_TOKEN)",
    )
    return p


def _http_addr(arg: str | None) -> str:
    """host:port of the agent to drive; as Consul's CLI, -http-addr, then the environment."""
    addr = arg or os.environ.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500"
    return addr.removeprefix("http://").rstrip("/")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.value_size < 0:
        print("consulpy bench kv: --value-size must be >= 0", file=sys.stderr)
        return 2
    args.http_addr = None if args.spawn else _http_addr(args.http_addr)
    if args.http_addr is not None and "://" in args.http_addr:
        print(f"consulpy bench kv: only http:// addresses, not {args.http_addr}", file=sys.stderr)
        return 2
    if (args.tree or args.acl_variant or args.telemetry_off_variant or args.loops) and not (
        args.spawn
    ):
        print(
            "consulpy bench kv: --tree, --loops, --acl-variant and --telemetry-off-variant "
            "need --spawn",
            file=sys.stderr,
        )
        return 2
    if shutil.which(WRK) is None:
        print(f"consulpy bench kv: {WRK} not found (Debian package wrk)", file=sys.stderr)
        return 2
    work = Workload(
        keys=args.keys,
        value_size=args.value_size,
        spread=args.spread,
        prefix=args.prefix,
        raw=args.raw,
        duration_s=args.duration,
        seed=args.seed,
        token=args.token if args.token is not None else os.environ.get("CONSUL_HTTP_TOKEN", ""),
    )
    try:
        with (
            sigterm_as_interrupt(),
            tempfile.TemporaryDirectory(prefix="consulpy-bench-kv-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            return _bench(args, work, Path(tmp), stack)
    except KeyboardInterrupt:
        print("consulpy bench kv: interrupted; stopped everything it started", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"consulpy bench kv: {exc}", file=sys.stderr)
        return 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bench(
    args: argparse.Namespace, work: Workload, workdir: Path, stack: contextlib.ExitStack
) -> int:
    targets: list[Target] = []

    def start(label: str, starter: Callable[[], Target]) -> None:
        _log(f"starting {label} ...")
        target = starter()
        stack.callback(target.stop)
        _log(f"  {target.name} at {', '.join(target.addrs)}; preloading {work.keys} keys")
        preload(target, work)
        targets.append(target)

    if args.spawn:
        variants = [THIS, *(Variant(label, tree) for label, tree in args.tree)]
        if args.acl_variant:
            variants.append(Variant("acl", acl=True))
        if args.telemetry_off_variant:
            variants.append(Variant("notelemetry", telemetry=False))
        if args.loops:
            variants = [with_loop(v, loop) for v in variants for loop in args.loops]
        for variant in variants:
            where = f" from {variant.tree}" if variant.tree else ""
            acl = " with ACLs" if variant.acl else ""
            acl += "" if variant.telemetry else " without telemetry"
            acl += f" on {variant.loop}" if variant.loop else ""
            start(
                f"consulpy ({args.spawn}){where}{acl}",
                lambda v=variant: SPAWNERS[args.spawn](workdir, v),
            )
    else:
        addr = args.http_addr
        start(f"the agent at {addr}", lambda: running_agent(addr, work.prefix, work.token))
    subject = targets[0].name
    for ref in args.reference:
        start(f"reference {ref}", lambda ref=ref: REFERENCES[ref](workdir))

    scripts = install_scripts(workdir)
    runs: dict[tuple[str, str, int], list[Run]] = {}
    total = args.repeats * len(args.clients) * len(args.ops) * len(targets)
    done = 0
    for repeat in range(args.repeats):
        for clients in args.clients:
            for op in args.ops:
                for target in rotated(targets, repeat):
                    done += 1
                    seed = work.seed + repeat
                    run = run_wrk(scripts, target, op, clients, work, seed, workdir)
                    runs.setdefault((target.name, op, clients), []).append(run)
                    note = f"  ERRORS={run.errors}" if run.errors else ""
                    _log(
                        f"[{done}/{total}] {target.name} {op} c={clients}: "
                        f"{run.ops_per_s:.0f} ops/s p99 {run.p99_ms:.2f} ms "
                        f"wrk cpu {run.loadgen_cpu_pct:.0f}%{note}"
                    )

    results = [summarize(t, op, c, rs, work) for (t, op, c), rs in runs.items()]
    ratios = ratio_lines(results, subject, [t.name for t in targets[1:]])
    for line in (*results, *ratios):
        print(json.dumps(line), flush=True)
    _log("\n" + render_table(results, ratios))
    errors = sum(r["errors"] for r in results)
    if errors:
        _log(
            f"\nFAILED: {errors} requests failed (non-2xx answers, bad bodies or socket errors); "
            "the figures above are not valid"
        )
        return 1
    _log(f"\nmedians of {args.repeats} runs of {work.duration_s}s each")
    return 0
