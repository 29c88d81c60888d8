"""`consulpy bench gossip -n 10,30`: consulpy's gossip against Debian's serf, side by side.

For each implementation it starts N agent processes on 127.0.0.1 with memberlist's LAN
timings (``serf agent`` and ``python -m consulpy.gossip.agent_main``, one process per member),
then measures, as Serf's own benchmark does:

* join convergence: one more agent joins; time until every member lists it alive;
* user event delivery: an event fired on one member; time until every member received it;
* kill -9 detection: one member is SIGKILLed; time until every other lists it failed;
* leave propagation: one member leaves gracefully; time until every other lists it left.

Each trial adds a member and removes two (the crashed one and the leaver); a fresh member
then joins (untimed) so that every trial runs at the same size, N (N + 1 during the join and
the user event, N after the crash), instead of the pool shrinking by one per trial.

Members are observed through Serf's agent RPC (``members`` polled every ``--poll`` seconds,
``stream`` for user events), identically for both implementations. Medians are printed with
the consulpy/serf ratio (below 1 means consulpy is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from consulpy.gossip.procs import AgentProcess, serf_available
from consulpy.gossip.rpc import RPCClient

SERF_REFERENCE = {  # medians measured on this machine when the issue was filed
    10: {"convergence": 0.24, "user_event": 0.31, "detection": 5.8, "leave": 0.74},
    30: {"convergence": 0.46, "user_event": 0.42, "detection": 7.5, "leave": 0.90},
}
# The source tree, so child processes import this same consulpy.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRICS = ("convergence", "user_event", "detection", "leave")


class Cluster:
    def __init__(self, kind: str, n: int, poll: float) -> None:
        self.kind = kind
        self.n = n
        self.poll = poll
        self.agents: list[AgentProcess] = []
        self.clients: dict[str, RPCClient] = {}
        self._spawned = 0

    def new_agent(self) -> AgentProcess:
        self._spawned += 1
        return AgentProcess(self.kind, f"{self.kind[:2]}-{self._spawned:02d}")

    async def start(self) -> None:
        first = self.new_agent()
        await first.start()
        await self._attach(first)
        rest = [self.new_agent() for _ in range(self.n - 1)]
        # Start in small batches so process start-up does not starve the running members.
        for i in range(0, len(rest), 5):
            batch = rest[i : i + 5]
            await asyncio.gather(*(a.start(join=[first.gossip_addr]) for a in batch))
            for a in batch:
                await self._attach(a)
        names = [a.name for a in self.agents]
        await self.wait(lambda: self.all_status(names, "alive"), 120, "initial convergence")

    async def _attach(self, a: AgentProcess) -> None:
        self.agents.append(a)
        self.clients[a.name] = await a.client()

    async def view(self, a: AgentProcess) -> dict[str, str]:
        ms = await self.clients[a.name].members()
        return {m["Name"]: m["Status"] for m in ms}

    async def all_status(
        self, names: list[str], status: str, among: list[AgentProcess] | None = None
    ) -> bool:
        views = await asyncio.gather(*(self.view(a) for a in among or self.agents))
        return all(v.get(n) == status for v in views for n in names)

    async def wait(self, cond: Callable[[], Awaitable[bool]], limit: float, what: str) -> float:
        start = time.monotonic()
        while True:
            if await cond():
                return time.monotonic() - start
            if time.monotonic() - start > limit:
                raise TimeoutError(f"{self.kind}: {what} not reached in {limit}s")
            await asyncio.sleep(self.poll)

    async def stop(self) -> None:
        for c in self.clients.values():
            await c.close()
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)

    # ------------------------------------------------------------ measurements

    async def convergence(self) -> float:
        a = self.new_agent()
        await a.start()
        c = await a.client()
        t0 = time.monotonic()
        # Replay: with it off, Serf ignores events older than the join, and a fresh
        # cluster's next event can carry such an old Lamport time.
        await c.call("join", {"Existing": [self.agents[0].gossip_addr], "Replay": True})
        self.agents.append(a)
        self.clients[a.name] = c
        dt = await self.wait(lambda: self.all_status([a.name], "alive"), 120, "convergence")
        return time.monotonic() - t0 if dt else 0.0

    async def user_event(self, idx: int) -> float:
        name = f"bench-{idx}"
        received: dict[str, float] = {}
        streams = []

        ready = {a.name: asyncio.Event() for a in self.agents}

        async def listen(a: AgentProcess) -> None:
            c = await a.client()
            streams.append(c)
            async for rec in c.stream("user", ready[a.name]):
                if rec.get("Name") == name:
                    received[a.name] = time.monotonic()
                    return

        tasks = [asyncio.create_task(listen(a)) for a in self.agents]
        for event in ready.values():  # every subscription acknowledged
            await asyncio.wait_for(event.wait(), 30)
        sender = self.agents[idx % len(self.agents)]
        t0 = time.monotonic()
        await self.clients[sender.name].call(
            "event", {"Name": name, "Payload": b"x", "Coalesce": False}
        )
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        finally:
            for t in tasks:
                t.cancel()
            for c in streams:
                await c.close()
        return max(received.values()) - t0

    async def replenish(self) -> None:
        """Start one more member (untimed) and wait until everybody lists it alive."""
        a = self.new_agent()
        await a.start(join=[self.agents[0].gossip_addr])
        await self._attach(a)
        await self.wait(lambda: self.all_status([a.name], "alive"), 120, "replenish")

    async def _remove(self, victim: AgentProcess) -> list[AgentProcess]:
        self.agents.remove(victim)
        await self.clients.pop(victim.name).close()
        return self.agents

    async def detection(self) -> float:
        victim = self.agents[-1]
        others = await self._remove(victim)
        t0 = time.monotonic()
        victim.kill9()
        await self.wait(
            lambda: self.all_status([victim.name], "failed", others), 120, "failure detection"
        )
        dt = time.monotonic() - t0
        await victim.stop()
        return dt

    async def leave(self) -> float:
        victim = self.agents[-1]
        c = await victim.client()
        others = await self._remove(victim)
        t0 = time.monotonic()
        leave = asyncio.create_task(c.call("leave", timeout=30))
        dt = await self.wait(
            lambda: self.all_status([victim.name], "left", others), 60, "leave propagation"
        )
        dt = time.monotonic() - t0 if dt else 0.0
        await asyncio.gather(leave, return_exceptions=True)
        await c.close()
        await victim.stop()
        return dt


async def bench_one(kind: str, n: int, trials: int, poll: float) -> dict[str, list[float]]:
    cl = Cluster(kind, n, poll)
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    try:
        await cl.start()
        for i in range(trials):
            out["convergence"].append(await cl.convergence())
            out["user_event"].append(await cl.user_event(i))
            out["detection"].append(await cl.detection())
            # Let the failure settle (out of the piggyback queues) before the next step.
            await asyncio.sleep(2)
            out["leave"].append(await cl.leave())
            await cl.replenish()
            print(
                f"  {kind} trial {i + 1}/{trials}: "
                + ", ".join(f"{m} {out[m][-1]:.2f}s" for m in METRICS),
                flush=True,
            )
    finally:
        await cl.stop()
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def run(args: argparse.Namespace) -> int:
    kinds = ["serf", "consulpy"] if args.kind == "both" else [args.kind]
    if "serf" in kinds and not serf_available():
        print(
            "serf is not installed (apt-get install serf); running consulpy only", file=sys.stderr
        )
        kinds = ["consulpy"]
    tables = []
    for n in args.n:
        results: dict[str, dict[str, list[float]]] = {}
        for kind in kinds:
            print(f"== {kind}: {n} agents, {args.trials} trials", flush=True)
            results[kind] = await bench_one(kind, n, args.trials, args.poll)
        tables.append(_table(n, args.trials, results))
    print()
    print("\n\n".join(tables))
    return 0


def _table(n: int, trials: int, results: dict[str, dict[str, list[float]]]) -> str:
    ref = SERF_REFERENCE.get(n, {})
    lines = [
        f"gossip benchmark, N={n}, medians over {trials} trials (seconds)",
        f"{'metric':<14}{'serf':>10}{'consulpy':>10}{'ratio':>8}{'serf ref':>10}",
    ]
    for m in METRICS:
        s = med(results.get("serf", {}).get(m, []))
        c = med(results.get("consulpy", {}).get(m, []))
        ratio = c / s if s == s and c == c and s > 0 else float("nan")
        r = ref.get(m)
        lines.append(f"{m:<14}{s:>10.2f}{c:>10.2f}{ratio:>8.2f}{(f'{r:.2f}' if r else '-'):>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------- ack latency under HTTP load

_PINGER = r"""
import socket, sys, time
from consulpy.gossip import wire
from consulpy.gossip.messages import Ack, Ping, decode_message
host, port, name, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
sec = wire.Security()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(2.0)
rtts, lost, seq = [], 0, 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    seq += 1
    t0 = time.monotonic()
    s.sendto(wire.encode_packet(Ping(seq, name).encode(), sec, False), (host, port))
    while True:
        try:
            data, _ = s.recvfrom(65536)
        except socket.timeout:
            lost += 1
            break
        msgs = [decode_message(m) for m in wire.decode_packet(data, sec)]
        if any(isinstance(m, Ack) and m.seq_no == seq for m in msgs):
            rtts.append(time.monotonic() - t0)
            break
    time.sleep(0.05)
rtts.sort()
q = lambda f: rtts[min(len(rtts) - 1, int(f * len(rtts)))] * 1000 if rtts else float("nan")
print(f"{len(rtts)} {lost} {q(0.5):.1f} {q(0.99):.1f} {q(1.0):.1f}")
"""


async def ack_latency(seconds: float, handler_ms: float) -> int:
    """Ack round trips to a Serf sharing its process with a loaded aiohttp server."""
    import shutil

    from aiohttp import web

    from consulpy.gossip.serf import Serf, SerfConfig
    from consulpy.util.ports import free_port

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1

    async def fast(_req: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def cpu(_req: web.Request) -> web.Response:
        end = time.perf_counter() + handler_ms / 1000
        while time.perf_counter() < end:  # a handler that holds the loop (and the GIL)
            pass
        return web.Response(text="ok")

    print(
        f"ack round trips while wrk loads an aiohttp server in the same process "
        f"({seconds:.0f}s each; /cpu holds the loop {handler_ms:.0f} ms per request)"
    )
    print(
        f"{'gossip runs on':<22}{'load':<10}{'acks':>6}{'lost':>6}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}"
    )
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for own_thread in (False, True):
        for path in ("none", "/", "/cpu"):
            serf = Serf(
                SerfConfig(
                    node_name="target", bind_addr="127.0.0.1", bind_port=0, own_thread=own_thread
                )
            )
            await serf.start()
            app = web.Application()
            app.router.add_get("/", fast)
            app.router.add_get("/cpu", cpu)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            http_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", http_port).start()
            pinger = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _PINGER,
                "127.0.0.1",
                str(serf.bound_port),
                "target",
                str(seconds),
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            load = None
            if path != "none":
                load = await asyncio.create_subprocess_exec(
                    wrk,
                    "-t1",
                    "-c32",
                    f"-d{int(seconds)}s",
                    f"http://127.0.0.1:{http_port}{path}",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            out, _ = await pinger.communicate()
            if load is not None:
                await load.wait()
            await runner.cleanup()
            await serf.shutdown()
            n, lost, p50, p99, mx = out.decode().split()
            where = "own thread" if own_thread else "application loop"
            print(f"{where:<22}{path:<10}{n:>6}{lost:>6}{p50:>9}{p99:>9}{mx:>9}", flush=True)
    return 0


def _sizes(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {exc}") from None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="consulpy bench gossip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "-n",
        type=_sizes,
        default=[10],
        help="cluster sizes, comma-separated (the issue: 10,30, measured in one run)",
    )
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--kind", choices=["both", "serf", "consulpy"], default="both")
    ap.add_argument("--poll", type=float, default=0.05, help="membership poll interval (s)")
    ap.add_argument(
        "--ack-latency",
        action="store_true",
        help="instead: measure ack latency under HTTP load in the same process",
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="per --ack-latency run")
    ap.add_argument(
        "--handler-ms",
        type=float,
        default=50.0,
        help="CPU time of the /cpu handler in --ack-latency runs",
    )
    args = ap.parse_args(argv)
    if args.ack_latency:
        return asyncio.run(ack_latency(args.seconds, args.handler_ms))
    if min(args.n) < 3:
        ap.error("-n must be at least 3")
    return asyncio.run(run(args))
