"""`consulpy bench shutdown`: how long an agent takes to exit on SIGTERM while N blocking
queries are open.

The agent runs as its own process (`consulpy agent -dev`); the queries come from another
process (raw sockets from asyncio, no HTTP library) that holds N connections, each parked in
`GET /v1/kv/<key>?index=<current>&wait=10m`. Once a plain request shows the agent has taken
them all in, the agent gets SIGTERM; the figure is the time from the signal to the process
exit, and the holder reports how many of its connections were closed cleanly (EOF).

    consulpy bench shutdown -n 15000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

BANNER_HTTP = re.compile(r"HTTP: (\d+\.\d+\.\d+\.\d+:\d+)")


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# ------------------------------------------------------------------ the holder process
async def _hold(addr: str, count: int, index: int) -> int:
    host, port = addr.rsplit(":", 1)
    request = (
        f"GET /v1/kv/bench-shutdown?index={index}&wait=10m HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    ).encode()
    conns = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        conns.append((reader, writer))
    await asyncio.gather(*(w.drain() for _, w in conns))
    print("ready", flush=True)

    async def outcome(reader: asyncio.StreamReader) -> str:
        try:
            data = await reader.read()
        except ConnectionError:
            return "reset"
        return "eof" if not data else "answered"

    results = await asyncio.gather(*(outcome(r) for r, _ in conns))
    counts = {k: results.count(k) for k in ("eof", "reset", "answered")}
    print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 0


def hold_main(argv: list[str]) -> int:
    addr, count, index = argv[0], int(argv[1]), int(argv[2])
    _raise_fd_limit(count + 100)
    return asyncio.run(_hold(addr, count, index))


# ------------------------------------------------------------------ the bench
def _index(addr: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{addr}/v1/kv/bench-shutdown", timeout=60) as r:
            return int(r.headers["X-Consul-Index"])
    except urllib.error.HTTPError as exc:
        return int(exc.headers["X-Consul-Index"])


def _start_agent(extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "consulpy", "agent", "-dev", "-bind=127.0.0.1"]
    argv += ["-client=127.0.0.1", "-http-port=0", "-server-port=0", "-serf-lan-port=0"]
    argv += ["-serf-wan-port=-1", "-dns-port=-1", "-grpc-port=-1", "-log-level=warn"]
    # Every query comes from one client IP: lift the per-client connection cap (200 by default).
    argv += ["-hcl", "limits { http_max_conns_per_client = 0 }", *extra]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        match = BANNER_HTTP.search(line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the agent did not start")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="consulpy bench shutdown")
    parser.add_argument("-n", type=int, default=15000, help="blocking queries to hold open")
    parser.add_argument("-agent-arg", action="append", default=[], help="extra agent flag")
    args = parser.parse_args(argv)
    _raise_fd_limit(args.n + 1000)  # the agent inherits the limit
    agent, addr = _start_agent(args.agent_arg)
    holder = None
    try:
        index = _index(addr)
        print(f"agent at {addr}; opening {args.n} blocking queries", flush=True)
        holder = subprocess.Popen(
            [sys.executable, "-m", "consulpy.bench.shutdown", addr, str(args.n), str(index)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "ready":
            raise SystemExit("the holder did not open its connections")
        # A plain request queued behind the blocking ones: answered means all were taken in.
        with urllib.request.urlopen(f"http://{addr}/v1/agent/self", timeout=120):
            pass
        started = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(120)
        elapsed = time.monotonic() - started
        summary = holder.stdout.readline().strip()
        holder.wait(60)
        print(f"exit code {code} after {elapsed:.3f}s with {args.n} open blocking queries")
        print(f"client connections: {summary}")
        return 0
    finally:
        for proc in (holder, agent):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    sys.exit(hold_main(sys.argv[1:]))
