"""`consulpy bench raft`: Raft write throughput and commit latency, single node vs 3 nodes.

Every case writes a real log with real fsyncs in a temporary directory, on each store named by
--logstore (wal: the segment log, the default; sqlite: the previous store). The 3-node
cluster runs the two followers in their own processes (so they do not share the leader's event
loop and GIL) and talks real TCP on 127.0.0.1. For each concurrency level, N proposers loop on
propose() for --duration seconds; latency is from propose() to "committed and applied on the
leader".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from consulpy.raft.config import RaftConfig
from consulpy.raft.node import RaftNode
from consulpy.raft.types import Server


class _Counter:
    """Minimal state machine: counts applied entries and their bytes."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    def apply(self, index: int, data: bytes) -> int:
        self.count += 1
        self.bytes += len(data)
        return index

    def snapshot(self) -> Callable[[], bytes]:
        frozen = (self.count, self.bytes)
        return lambda: f"{frozen[0]} {frozen[1]}".encode()

    def restore(self, data: bytes) -> None:
        count, size = data.decode().split()
        self.count, self.bytes = int(count), int(size)


def _config(node_id: str, store: str) -> RaftConfig:
    return RaftConfig(
        id=node_id,
        address="127.0.0.1:0",
        tick_interval=0.05,
        election_ticks=20,
        lease_ticks=10,
        log_store=store,
    )


async def _serve_follower(node_id: str, data_dir: str, store: str) -> None:
    node = RaftNode(_config(node_id, store), _Counter(), data_dir)
    await node.start()
    print(f"ADDR {node.config.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    await node.shutdown()


def _spawn_follower(node_id: str, data_dir: str, store: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "consulpy.bench.raft", "--follower", node_id, data_dir, store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("ADDR "):
        proc.kill()
        raise RuntimeError(f"follower {node_id} failed to start: {line!r}")
    return proc, line[5:]


async def _workload(node: RaftNode, concurrency: int, duration: float, size: int) -> dict:
    payload = os.urandom(size)
    latencies: list[float] = []
    warmup_end = time.perf_counter() + min(0.5, duration / 4)
    end = warmup_end + duration

    async def worker() -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            await node.propose(payload)
            t1 = time.perf_counter()
            if t0 >= warmup_end:
                latencies.append(t1 - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    n = len(latencies)
    return {
        "ops": n,
        "ops_per_sec": n / duration,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
    }


async def _wait_leader(node: RaftNode, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not node.is_leader:
        if time.monotonic() > deadline:
            raise RuntimeError("no leader elected")
        await asyncio.sleep(0.01)


async def _run_case(nodes: int, concurrency: int, duration: float, size: int, store: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="consulpy-bench-raft-") as tmp:
        procs: list[subprocess.Popen] = []
        leader = RaftNode(_config("b1", store), _Counter(), os.path.join(tmp, "b1"))
        await leader.start()
        try:
            await leader.bootstrap([Server("b1", leader.config.address)])
            await _wait_leader(leader)
            for i in range(2, nodes + 1):
                proc, addr = _spawn_follower(f"b{i}", os.path.join(tmp, f"b{i}"), store)
                procs.append(proc)
                await leader.add_voter(f"b{i}", addr, timeout=30)
            return await _workload(leader, concurrency, duration, size)
        finally:
            await leader.shutdown()
            for proc in procs:
                if proc.stdin is not None:
                    proc.stdin.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="consulpy bench raft", description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per case (default 5)")
    ap.add_argument("--concurrency", default="1,64", help="comma-separated proposer counts")
    ap.add_argument("--size", type=int, default=128, help="bytes per proposal (default 128)")
    ap.add_argument(
        "--logstore",
        default="wal",
        help="comma-separated log stores to compare: wal, sqlite (default wal)",
    )
    ap.add_argument("--follower", nargs=3, metavar=("ID", "DIR", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.follower:
        asyncio.run(_serve_follower(*args.follower))
        return 0
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    stores = [s.strip() for s in args.logstore.split(",") if s.strip()]
    for s in stores:
        if s not in ("wal", "sqlite"):
            print(f"consulpy bench raft: unknown log store {s!r} (wal, sqlite)", file=sys.stderr)
            return 2
    print(
        f"raft bench: {args.size}-byte proposals, {args.duration:g}s per case, 127.0.0.1 TCP, "
        f"fsync on"
    )
    header = (
        f"{'store':>6}  {'proposers':>9}  {'nodes':>5}  {'ops/s':>9}  {'p50 ms':>8}  "
        f"{'p99 ms':>8}  ratio"
    )
    print(header)
    print("-" * len(header))
    results: dict[tuple[str, int, int], Any] = {}
    for c in levels:
        for n in (1, 3):
            for store in stores:
                r = asyncio.run(_run_case(n, c, args.duration, args.size, store))
                results[(store, c, n)] = r
                notes = []
                if n == 3 and results[(store, c, 1)]["ops_per_sec"]:
                    one = results[(store, c, 1)]["ops_per_sec"]
                    notes.append(f"{r['ops_per_sec'] / one:.2f}x of 1 node")
                first = results.get((stores[0], c, n))
                if store != stores[0] and first and r["ops_per_sec"]:
                    notes.append(f"{stores[0]} is {first['ops_per_sec'] / r['ops_per_sec']:.2f}x")
                print(
                    f"{store:>6}  {c:>9}  {n:>5}  {r['ops_per_sec']:>9.0f}  {r['p50_ms']:>8.2f}  "
                    f"{r['p99_ms']:>8.2f}  {'; '.join(notes)}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
