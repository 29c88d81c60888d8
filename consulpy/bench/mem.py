"""`consulpy bench mem`: resident memory of one server holding N keys of S bytes, against etcd.

Why: a KV store people put configuration in must not need several times its data in RAM. The
benchmark starts one consulpy server (a single-server cluster with a data dir, or a dev agent)
and one single-member Debian etcd, writes the same keys to both over HTTP (the kv benchmark's
preload), waits until the server is idle (a snapshot it started must not be in the figure or
not depending on timing), and then reads each server process's VmRSS (resident now) and VmHWM
(the peak) from /proc. It prints both, the raw data size (key bytes + value bytes), and the ratios
RSS / raw and consulpy / etcd. The RSS of each server before the writes is printed too, so the
growth per key can be told apart from the interpreter's own start-up size.

Output: one JSON object on stdout (and in --json PATH); a small table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from consulpy.bench.kv import SPAWNERS, THIS, Workload, preload
from consulpy.bench.procs import Target, sigterm_as_interrupt
from consulpy.bench.refservers import ETCD_BIN, start_etcd

QUICK_KEYS = 5_000
PREFIX = "bench/mem/"
# After the writes a server may still be busy (a Raft snapshot being serialised and written):
# read its memory once it used less than SETTLE_CPU_S of CPU in a SETTLE_WINDOW_S window, or
# after SETTLE_MAX_S whatever it does. Otherwise the figure depends on when a snapshot ran.
SETTLE_WINDOW_S = 1.0
SETTLE_CPU_S = 0.05
SETTLE_MAX_S = 120.0


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of process `pid` in bytes, and RSS split into anonymous memory (the
    heap) and file pages (mapped files, e.g. a log read through mmap); 0 when it is gone."""
    fields = {"VmRSS": "rss", "VmHWM": "hwm", "RssAnon": "rss_anon", "RssFile": "rss_file"}
    out = dict.fromkeys(fields.values(), 0)
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            out[fields[name]] = int(rest.split()[0]) * 1024
    return out


def target_memory(target: Target) -> dict[str, int]:
    """Summed over the target's processes (one server here)."""
    total = {"rss": 0, "hwm": 0, "rss_anon": 0, "rss_file": 0}
    for proc in target.procs:
        for name, value in proc_memory(proc.pid).items():
            total[name] += value
    return total


def settle(target: Target) -> float:
    """Wait until the target is idle (see SETTLE_*); returns the seconds waited."""
    started = time.monotonic()
    last = target.cpu_seconds()
    while last is not None and time.monotonic() - started < SETTLE_MAX_S:
        time.sleep(SETTLE_WINDOW_S)  # a sampling window, not a synchronisation
        now = target.cpu_seconds()
        if now is None or now - last < SETTLE_CPU_S:
            break
        last = now
    return time.monotonic() - started


def raw_size(work: Workload) -> int:
    """What the data is worth: every key's bytes plus its value's bytes."""
    key_bytes = sum(len(work.key(i).encode()) for i in range(work.keys))
    return key_bytes + work.keys * work.value_size


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="consulpy bench mem",
        description="RSS of one consulpy server and one etcd holding the same keys.",
    )
    p.add_argument("--keys", type=int, default=100_000, help="keys to write (default 100000)")
    p.add_argument("--value-size", type=int, default=1024, help="bytes per value (default 1024)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_KEYS} keys (overrides --keys)")
    p.add_argument(
        "--spawn",
        choices=("server", "dev"),
        default="server",
        help="server: one server with a data dir, as etcd (default); dev: a dev agent",
    )
    p.add_argument("--no-etcd", action="store_true", help="measure consulpy only")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.keys < 1 or args.value_size < 0:
        print("consulpy bench mem: --keys must be >= 1 and --value-size >= 0", file=sys.stderr)
        return 2
    if not args.no_etcd and shutil.which(ETCD_BIN) is None:
        print(f"consulpy bench mem: {ETCD_BIN} not found (Debian etcd-server)", file=sys.stderr)
        return 2
    work = Workload(
        keys=QUICK_KEYS if args.quick else args.keys,
        value_size=args.value_size,
        spread="sequential",
        prefix=PREFIX,
        raw=False,
        duration_s=1,
        seed=1,
    )
    try:
        with (
            sigterm_as_interrupt(),
            tempfile.TemporaryDirectory(prefix="consulpy-bench-mem-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            result = _bench(args, work, Path(tmp), stack)
    except KeyboardInterrupt:
        print("consulpy bench mem: interrupted; stopped everything it started", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"consulpy bench mem: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    _log(render(result))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _measure(label: str, starter, work: Workload, stack: contextlib.ExitStack) -> dict:  # type: ignore[no-untyped-def]
    _log(f"starting {label} ...")
    target: Target = starter()
    stack.callback(target.stop)
    before = target_memory(target)
    started = time.monotonic()
    _log(f"  {target.name}: writing {work.keys} keys of {work.value_size} bytes")
    preload(target, work)
    write_s = time.monotonic() - started
    settle_s = settle(target)
    after = target_memory(target)
    # Stop it now: the next target's measurement must not share the machine's memory with it.
    target.stop()
    return {
        "name": target.name,
        "rss_before": before["rss"],
        "rss": after["rss"],
        "hwm": after["hwm"],
        "rss_anon": after["rss_anon"],
        "rss_file": after["rss_file"],
        "growth": after["rss"] - before["rss"],
        "write_s": round(write_s, 1),
        "settle_s": round(settle_s, 1),
    }


def _bench(
    args: argparse.Namespace, work: Workload, workdir: Path, stack: contextlib.ExitStack
) -> dict:
    if args.spawn == "server":
        consulpy = _measure(
            "one consulpy server",
            lambda: SPAWNERS["server"](workdir, THIS),
            work,
            stack,
        )
    else:
        consulpy = _measure(
            "a consulpy dev agent", lambda: SPAWNERS["dev"](workdir, THIS), work, stack
        )
    raw = raw_size(work)
    result: dict = {
        "bench": "mem",
        "keys": work.keys,
        "value_size": work.value_size,
        "raw_bytes": raw,
        "consulpy": consulpy,
        "consulpy_rss_per_raw": _ratio(consulpy["rss"], raw),
        "consulpy_growth_per_raw": _ratio(consulpy["growth"], raw),
    }
    if not args.no_etcd:
        etcd = _measure("etcd (1 member)", lambda: start_etcd(1, workdir), work, stack)
        result["etcd"] = etcd
        result["etcd_rss_per_raw"] = _ratio(etcd["rss"], raw)
        result["consulpy_per_etcd_rss"] = _ratio(consulpy["rss"], etcd["rss"])
        result["consulpy_per_etcd_hwm"] = _ratio(consulpy["hwm"], etcd["hwm"])
    return result


def render(r: dict) -> str:
    head = (
        f"{'server':<16}{'RSS MiB':>10}{'anon MiB':>10}{'HWM MiB':>10}{'empty MiB':>11}"
        f"{'RSS/raw':>9}{'write s':>9}"
    )
    lines = [
        f"{r['keys']} keys x {r['value_size']} B = {_mib(r['raw_bytes'])} MiB raw",
        head,
        "-" * len(head),
    ]
    for name in ("consulpy", "etcd"):
        m = r.get(name)
        if m is None:
            continue
        lines.append(
            f"{m['name']:<16}{_mib(m['rss']):>10}{_mib(m['rss_anon']):>10}{_mib(m['hwm']):>10}"
            f"{_mib(m['rss_before']):>11}"
            f"{m['rss'] / r['raw_bytes']:>9.2f}{m['write_s']:>9.1f}"
        )
    if "consulpy_per_etcd_rss" in r:
        lines.append(
            f"consulpy / etcd: RSS x{r['consulpy_per_etcd_rss']}, HWM x{r['consulpy_per_etcd_hwm']}"
        )
    return "\n".join(lines)
