"""`consulpy bench all [--quick] [--json PATH]`: every benchmark once, one JSON summary.

Why: a regression guard. CI runs `--quick` (every benchmark at a small size, a few minutes in
all) so that a change that breaks a benchmark, or makes one crash, is seen at once; the figures
are recorded in the summary for a reader, never compared with a threshold (a loaded CI machine
would make such a check flaky). The exit status is non-zero only when a benchmark crashed
(exited non-zero or ran past its time limit).

Each benchmark runs as its own `python -m consulpy bench <name> ...` process (a crash in one
does not take the others with it); the JSON it prints on stdout becomes its `results` in the
summary (a bench that prints only a table has its text kept as `output`). A benchmark whose
outside program is not installed (etcd, serf, envoy, dnsperf, dnsmasq, wrk, cc) is recorded as
skipped, with the missing program named.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    """One benchmark run: its name, its arguments (quick and full), what it needs, a time limit."""

    bench: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    needs: tuple[str, ...]
    limit_s: float


STEPS: tuple[Step, ...] = (
    Step(
        "kv",
        (
            "--spawn",
            "dev",
            "--reference",
            "etcd1",
            "--clients",
            "1,8",
            "--duration",
            "1",
            "--repeats",
            "1",
            "--keys",
            "100",
        ),
        ("--spawn", "cluster", "--reference", "etcd", "--clients", "1,64", "--duration", "5"),
        ("wrk", "etcd"),
        300,
    ),
    Step(
        "raft",
        ("--duration", "1", "--concurrency", "1,8"),
        ("--duration", "3", "--concurrency", "1,64"),
        (),
        180,
    ),
    Step("gossip", ("-n", "5", "--trials", "1"), ("-n", "30", "--trials", "3"), ("serf",), 300),
    Step("mem", ("--quick",), (), ("etcd",), 600),
    Step("gossip-sim", ("--members", "50"), ("--members", "1000"), (), 1800),
    Step(
        "watch",
        ("--scenario", "both", "-n", "200", "--writes", "20", "--json"),
        ("--json",),
        ("cc",),
        300,
    ),
    Step(
        "dns",
        ("--duration", "1", "--qtypes", "A", "--repeats", "1"),
        ("--repeats", "3"),
        ("dnsperf", "dnsmasq"),
        180,
    ),
    Step("xds", ("--repeats", "3", "--json"), ("--json",), ("envoy",), 300),
    Step("shutdown", ("-n", "200"), (), (), 180),
)
# Where each outside program is looked for (PATH, then the Debian location).
PROGRAMS = {
    "wrk": "/usr/bin/wrk",
    "etcd": "/usr/bin/etcd",
    "serf": "/usr/bin/serf",
    "dnsperf": "/usr/bin/dnsperf",
    "dnsmasq": "/usr/sbin/dnsmasq",
    "envoy": "envoy",
    "cc": "cc",
}


def missing(step: Step) -> list[str]:
    return [p for p in step.needs if shutil.which(PROGRAMS[p]) is None and shutil.which(p) is None]


def json_lines(text: str) -> list[object]:
    """What a bench printed as JSON: its whole stdout if that is one (indented) JSON value,
    else every stdout line that is a JSON value (benches print tables on stderr)."""
    try:
        whole = json.loads(text)
    except ValueError:
        pass
    else:
        return whole if isinstance(whole, list) else [whole]
    out: list[object] = []
    for line in text.splitlines():
        line = line.strip()
        if line[:1] in ("{", "["):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def run_step(step: Step, quick: bool, workdir: Path) -> dict:
    argv = [sys.executable, "-m", "consulpy", "bench", step.bench]
    argv += step.quick if quick else step.full
    record: dict = {"bench": step.bench, "argv": argv[3:]}
    absent = missing(step)
    if absent:
        record.update(status="skipped", reason=f"not installed: {', '.join(absent)}")
        return record
    err_path = workdir / f"{step.bench}.stderr"
    started = time.monotonic()
    with open(err_path, "wb") as err:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=step.limit_s,
                check=False,
            )
            code: int | None = proc.returncode
            stdout = proc.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            code = None
            stdout = (exc.stdout or b"").decode(errors="replace")
    record["wall_s"] = round(time.monotonic() - started, 1)
    record["results"] = json_lines(stdout)
    if not record["results"] and stdout.strip():
        # a bench that prints only a table: keep its text for the reader
        record["output"] = stdout.strip().splitlines()[-60:]
    if code == 0:
        record["status"] = "ok"
    else:
        record["status"] = "crashed"
        record["exit_code"] = code
        record["reason"] = (
            f"ran past its {step.limit_s:.0f} s limit" if code is None else f"exited with {code}"
        )
        tail = err_path.read_text(errors="replace").splitlines()[-30:]
        record["stderr_tail"] = tail
    return record


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="consulpy bench all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="every benchmark at a small size")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset ({', '.join(s.bench for s in STEPS)})",
    )
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in {s.bench for s in STEPS}]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}")
    steps = [s for s in STEPS if not names or s.bench in names]
    started = time.monotonic()
    records = []
    with tempfile.TemporaryDirectory(prefix="consulpy-bench-all-") as tmp:
        for step in steps:
            print(f"bench {step.bench} ...", file=sys.stderr, flush=True)
            record = run_step(step, args.quick, Path(tmp))
            records.append(record)
            detail = record.get("reason", f"{record.get('wall_s')} s")
            print(f"  {record['status']}: {detail}", file=sys.stderr, flush=True)
            for line in record.get("stderr_tail", []):
                print(f"    {line}", file=sys.stderr)
    crashed = [r["bench"] for r in records if r["status"] == "crashed"]
    summary = {
        "quick": args.quick,
        "wall_s": round(time.monotonic() - started, 1),
        "crashed": crashed,
        "benches": records,
    }
    text = json.dumps(summary, indent=2) + "\n"
    if args.json is not None:
        args.json.write_text(text)
    else:
        sys.stdout.write(text)
    print(
        f"bench all: {len(records)} benchmarks in {summary['wall_s']} s; "
        + (f"CRASHED: {', '.join(crashed)}" if crashed else "none crashed"),
        file=sys.stderr,
    )
    return 1 if crashed else 0
