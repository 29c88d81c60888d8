"""`consulpy bench dns`: DNS lookups per second and p99 latency, against dnsmasq in one run.

Load comes from Debian's `dnsperf` (a Python load generator would be the bottleneck). The
subject is a consulpy dev agent with a healthy service of `--instances` instances; the
reference is Debian's `dnsmasq` serving the same records (the same A set, the same SRV set with
the node addresses as additional records), which is the C ceiling on this machine. Queries use
EDNS (dnsperf -e) so both servers return every record: without EDNS consulpy would cut A and SRV
answers to `udp_answer_limit` (3), as Consul does, and the comparison would be unfair.

Each (query type, target) cell is run `--repeats` times, interleaved so noise hurts both alike;
medians are reported. A cell is two dnsperf runs: one at full speed (`--outstanding` queries in
flight) for queries/s, and one at a fixed `--latency-qps` with per-query latencies (-v) for p99:
dnsperf prints no percentiles, its verbose output slows it down, and a saturated server's
latency is only queueing.

Output: one JSON object per line on stdout (a result per target and query type, then the
ratios consulpy/dnsmasq); progress and a table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query

from consulpy.bench.procs import (
    Target,
    free_ports,
    http_json,
    run_measured,
    sigterm_as_interrupt,
    spawn,
    wait_until,
)
from consulpy.bench.refservers import wait_for_consul_leader

DNSPERF = "/usr/bin/dnsperf"
DNSMASQ = "/usr/sbin/dnsmasq"
SERVICE = "web"
QTYPES = ("A", "SRV")
STARTUP_TIMEOUT = 60.0


def instance_address(i: int) -> str:
    return f"10.1.0.{i + 1}"


def node_name(i: int) -> str:
    return f"n{i + 1}"


def instance_port(i: int) -> int:
    return 8001 + i


# --- targets -------------------------------------------------------------------------------


def _free_udp_tcp_port() -> int:
    import socket

    while True:
        (port,) = free_ports(1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _answers(port: int, qtype: str, want: int) -> bool:
    query = dns.message.make_query(f"{SERVICE}.service.consul", qtype, use_edns=0, payload=4096)
    try:
        resp = dns.query.udp(query, "127.0.0.1", port=port, timeout=1)
    except Exception:
        return False
    return sum(len(r) for r in resp.answer) == want


def start_consulpy(workdir: Path, instances: int) -> Target:
    """A dev agent with DNS, loaded with the healthy service; returns once DNS answers."""
    http_port, server_port, lan_port = free_ports(3)
    dns_port = _free_udp_tcp_port()
    argv = [
        sys.executable,
        "-m",
        "consulpy",
        "agent",
        "-dev",
        "-node=bench",
        f"-http-port={http_port}",
        f"-dns-port={dns_port}",
        "-grpc-port=-1",
        f"-server-port={server_port}",
        f"-serf-lan-port={lan_port}",
        "-serf-wan-port=-1",
        "-log-level=warn",
    ]
    proc = spawn("consulpy-dev", argv, workdir / "consulpy-dev.log")
    target = Target(name="consulpy", api="dns", addrs=[f"127.0.0.1:{dns_port}"], procs=[proc])
    try:
        http = f"127.0.0.1:{http_port}"
        wait_for_consul_leader(http, [proc])
        for i in range(instances):
            body = {
                "Node": node_name(i),
                "Address": instance_address(i),
                "Service": {
                    "ID": f"{SERVICE}-{i + 1}",
                    "Service": SERVICE,
                    "Port": instance_port(i),
                },
                "Check": {
                    "CheckID": f"check-{i + 1}",
                    "Name": "alive",
                    "Status": "passing",
                    "ServiceID": f"{SERVICE}-{i + 1}",
                },
            }
            status, reply = http_json(f"http://{http}/v1/catalog/register", body, "PUT")
            if status != 200:
                raise RuntimeError(f"registering instance {i + 1} failed: {status} {reply}")
        wait_until(
            lambda: _answers(dns_port, "A", instances), STARTUP_TIMEOUT, "consulpy DNS", [proc]
        )
    except BaseException:
        target.stop()
        raise
    return target


def dnsmasq_argv(port: int, instances: int) -> list[str]:
    """dnsmasq answering the same names from its own records only (no upstream, no files)."""
    argv = [
        DNSMASQ,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--local-ttl=0",
        "--log-facility=-",
    ]
    import os

    if os.geteuid() == 0:
        argv.append("--user=root")
    for i in range(instances):
        node = f"{node_name(i)}.node.dc1.consul"
        argv += [
            f"--host-record={SERVICE}.service.consul,{instance_address(i)}",
            f"--host-record={node},{instance_address(i)}",
            f"--srv-host={SERVICE}.service.consul,{node},{instance_port(i)},1,1",
        ]
    return argv


def start_dnsmasq(workdir: Path, instances: int) -> Target:
    port = _free_udp_tcp_port()
    proc = spawn("dnsmasq", dnsmasq_argv(port, instances), workdir / "dnsmasq.log")
    target = Target(name="dnsmasq", api="dns", addrs=[f"127.0.0.1:{port}"], procs=[proc])
    try:
        wait_until(lambda: _answers(port, "A", instances), STARTUP_TIMEOUT, "dnsmasq", [proc])
    except BaseException:
        target.stop()
        raise
    return target


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    qps: float
    p99_ms: float  # at the fixed latency rate
    sent: int
    lost: int
    errors: int  # answers other than NOERROR
    target_cpu_pct: float
    loadgen_cpu_pct: float


def dnsperf_argv(
    target: Target,
    datafile: Path,
    duration: float,
    outstanding: int,
    clients: int,
    rate: int | None = None,
) -> list[str]:
    """Full speed without `rate`; with it, a fixed rate and per-query latencies (-v)."""
    host, port = target.addrs[0].rsplit(":", 1)
    extra = ["-Q", str(rate), "-v"] if rate else []
    return [
        DNSPERF,
        "-s",
        host,
        "-p",
        port,
        "-d",
        str(datafile),
        "-l",
        f"{duration:g}",
        "-q",
        str(outstanding),
        "-c",
        str(clients),
        "-e",
        *extra,
    ]


def parse_dnsperf(text: str) -> dict[str, float]:
    """Totals and the p99 of the per-query latencies of one `dnsperf -v` run."""
    latencies: list[float] = []
    out: dict[str, float] = {"sent": 0, "lost": 0, "qps": 0.0, "errors": 0}
    for line in text.splitlines():
        if line.startswith("> "):
            parts = line.split()
            if parts[1] != "NOERROR":
                out["errors"] += 1
            with contextlib.suppress(ValueError, IndexError):
                latencies.append(float(parts[-1]))
            continue
        stripped = line.strip()
        if stripped.startswith("Queries sent:"):
            out["sent"] = int(stripped.split()[2])
        elif stripped.startswith("Queries lost:"):
            out["lost"] = int(stripped.split()[2])
        elif stripped.startswith("Queries per second:"):
            out["qps"] = float(stripped.split()[3])
    if not out["qps"]:
        raise RuntimeError(f"dnsperf printed no result:\n{text[-2000:]}")
    latencies.sort()
    out["p99_ms"] = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else 0.0
    return out


def run_dnsperf(
    target: Target,
    qtype: str,
    workdir: Path,
    duration: float,
    outstanding: int,
    clients: int,
    latency_qps: int,
) -> Run:
    """A full-speed run (queries/s, CPU) then a fixed-rate run (p99)."""
    datafile = workdir / f"{qtype}.txt"
    datafile.write_text(f"{SERVICE}.service.consul {qtype}\n")
    cpu_before = target.cpu_seconds() or 0.0
    fast = run_measured(dnsperf_argv(target, datafile, duration, outstanding, clients), workdir)
    cpu_after = target.cpu_seconds() or 0.0
    timed = run_measured(
        dnsperf_argv(target, datafile, duration / 2, outstanding, clients, latency_qps), workdir
    )
    for measured in (fast, timed):
        if measured.returncode != 0:
            raise RuntimeError(
                f"dnsperf failed ({measured.returncode}):\n{measured.stdout[-2000:]}"
            )
    parsed = parse_dnsperf(fast.stdout)
    latency = parse_dnsperf(timed.stdout)
    wall = max(fast.wall_s, 1e-9)
    return Run(
        qps=parsed["qps"],
        p99_ms=latency["p99_ms"],
        sent=int(parsed["sent"] + latency["sent"]),
        lost=int(parsed["lost"] + latency["lost"]),
        errors=int(parsed["errors"] + latency["errors"]),
        target_cpu_pct=100 * (cpu_after - cpu_before) / wall,
        loadgen_cpu_pct=100 * fast.cpu_s / wall,
    )


def summarize(
    target: str, qtype: str, runs: Sequence[Run], instances: int, latency_qps: int
) -> dict:
    return {
        "target": target,
        "qtype": qtype,
        "instances": instances,
        "qps": statistics.median(r.qps for r in runs),
        "p99_ms": statistics.median(r.p99_ms for r in runs),
        "p99_at_qps": latency_qps,
        "target_cpu_pct": statistics.median(r.target_cpu_pct for r in runs),
        "dnsperf_cpu_pct": statistics.median(r.loadgen_cpu_pct for r in runs),
        "lost": sum(r.lost for r in runs),
        "errors": sum(r.errors for r in runs),
        "runs": len(runs),
    }


def ratios(results: Sequence[dict]) -> list[dict]:
    by = {(r["target"], r["qtype"]): r for r in results}
    out = []
    for qtype in QTYPES:
        subject, ref = by.get(("consulpy", qtype)), by.get(("dnsmasq", qtype))
        if subject is None or ref is None or not ref["qps"]:
            continue
        out.append(
            {
                "ratio": f"consulpy/dnsmasq {qtype}",
                "qps": round(subject["qps"] / ref["qps"], 3),
                "p99": round(subject["p99_ms"] / ref["p99_ms"], 2) if ref["p99_ms"] else None,
            }
        )
    return out


def render_table(results: Sequence[dict], ratio_lines: Sequence[dict]) -> str:
    lines = [
        f"{'target':<10} {'type':<5} {'queries/s':>10} {'p99 ms*':>8} {'server cpu':>10} "
        f"{'dnsperf cpu':>11} {'lost':>5} {'errors':>6}"
    ]
    for r in results:
        lines.append(
            f"{r['target']:<10} {r['qtype']:<5} {r['qps']:>10.0f} {r['p99_ms']:>8.2f} "
            f"{r['target_cpu_pct']:>9.0f}% {r['dnsperf_cpu_pct']:>10.0f}% {r['lost']:>5} "
            f"{r['errors']:>6}"
        )
    for ratio in ratio_lines:
        lines.append(f"{ratio['ratio']}: {ratio['qps']:.2f} x queries/s, p99 x {ratio['p99']}")
    if results:
        lines.append(f"* p99 measured at a fixed {results[0]['p99_at_qps']} queries/s")
    return "\n".join(lines)


# --- command -------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="consulpy bench dns",
        description="DNS A and SRV lookups of a healthy service: consulpy vs dnsmasq (dnsperf).",
    )
    p.add_argument("--instances", type=_positive, default=10, help="service instances (10)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    p.add_argument("--repeats", type=_positive, default=1, help="runs per cell; medians (1)")
    p.add_argument(
        "--outstanding", type=_positive, default=100, help="dnsperf -q: queries in flight (100)"
    )
    p.add_argument("--clients", type=_positive, default=1, help="dnsperf -c: client sockets (1)")
    p.add_argument(
        "--latency-qps",
        type=_positive,
        default=2000,
        help="fixed rate of the p99 runs, queries/s (2000)",
    )
    p.add_argument("--qtypes", default=",".join(QTYPES), help="comma-separated query types (A,SRV)")
    return p


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    qtypes = [q.strip().upper() for q in args.qtypes.split(",") if q.strip()]
    if not qtypes or any(q not in QTYPES for q in qtypes):
        print("consulpy bench dns: --qtypes takes A and/or SRV", file=sys.stderr)
        return 2
    if args.duration <= 0:
        print("consulpy bench dns: --duration must be > 0", file=sys.stderr)
        return 2
    for tool, package in ((DNSPERF, "dnsperf"), (DNSMASQ, "dnsmasq")):
        if shutil.which(tool) is None:
            print(f"consulpy bench dns: {tool} not found (Debian {package})", file=sys.stderr)
            return 2
    try:
        with (
            sigterm_as_interrupt(),
            tempfile.TemporaryDirectory(prefix="consulpy-bench-dns-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            workdir = Path(tmp)
            _log(f"starting consulpy and dnsmasq with {args.instances} instances ...")
            targets = []
            for starter in (start_consulpy, start_dnsmasq):
                target = starter(workdir, args.instances)
                stack.callback(target.stop)
                targets.append(target)
            runs: dict[tuple[str, str], list[Run]] = {}
            total = args.repeats * len(qtypes) * len(targets)
            done = 0
            for _ in range(args.repeats):
                for qtype in qtypes:
                    for target in targets:
                        done += 1
                        run = run_dnsperf(
                            target,
                            qtype,
                            workdir,
                            args.duration,
                            args.outstanding,
                            args.clients,
                            args.latency_qps,
                        )
                        runs.setdefault((target.name, qtype), []).append(run)
                        _log(
                            f"[{done}/{total}] {target.name} {qtype}: {run.qps:.0f} q/s "
                            f"p99 {run.p99_ms:.2f} ms (lost {run.lost}, errors {run.errors})"
                        )
            results = [
                summarize(t, q, rs, args.instances, args.latency_qps) for (t, q), rs in runs.items()
            ]
            ratio_lines = ratios(results)
            for line in (*results, *ratio_lines):
                print(json.dumps(line), flush=True)
            _log("\n" + render_table(results, ratio_lines))
            if any(r["errors"] for r in results):
                _log("\nFAILED: some answers were not NOERROR; the figures are not valid")
                return 1
            return 0
    except KeyboardInterrupt:
        print("consulpy bench dns: interrupted; stopped everything it started", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"consulpy bench dns: {exc}", file=sys.stderr)
        return 1
