"""`consulpy bench gossip-sim --members 1000,5000`: the gossip layer at pool sizes no machine
here can run as processes, in the seeded discrete-event simulation (consulpy.gossip.simulation).

Why: Serf's behaviour at 1,000+ members (how fast news spreads, how fast a crash is noticed,
what it costs on the wire) depends on the protocol and its timings, not on the process that runs
it; the simulation runs the real sans-I/O cores (SWIM + Serf) against a simulated clock, with
memberlist's DefaultLANConfig (probe 1 s, gossip 200 ms to 3 nodes, suspicion mult 4,
retransmit mult 4, push-pull 30 s scaled by pool size) and a lossy network. All times are
simulated seconds, so the figures do not depend on the machine's load; only the wall time
the simulation took does.

For each N it measures:
* formation: N members all join member 0 at once; time until every member sees every other
  alive (push-pull joins, then gossip and periodic push-pull fill in the rest); by default only
  up to 500 members (--formation): larger pools start converged, since formation costs the
  simulation N^2 retransmitted alive messages;
* convergence: one more member joins a random member; time until every member sees it alive;
* detection: a random member crashes; time until the first member suspects it, the first
  declares it dead, and every member sees it dead;
* traffic in a quiet 10 s window of the converged pool (after the join news has finished its
  retransmissions): UDP payload bytes and packets per member per second; and the push-pull
  (TCP) state exchange: its size in bytes (both directions, as measured in the window) and
  what that costs per member per second at the scaled push-pull interval.

Output: one JSON object per N on stdout; a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from consulpy.gossip.config import MemberlistConfig, push_pull_scale
from consulpy.gossip.messages import NodeStateKind
from consulpy.gossip.simulation import NetworkModel, Simulation

ALIVE = {NodeStateKind.ALIVE}
DEAD = {NodeStateKind.DEAD}
TRAFFIC_WINDOW_S = 10.0
FORMATION_AUTO_MAX = 500


def _members(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {exc}") from None
    if not values or any(v < 3 for v in values):
        raise argparse.ArgumentTypeError("each pool size must be >= 3")
    return values


def _loss(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("loss must be in [0, 1)")
    return value


def _wait(sim: Simulation, cond, limit: float, step: float) -> float | None:  # type: ignore[no-untyped-def]
    """Simulated seconds from now until cond() holds, or None past `limit` seconds."""
    start = sim.now
    at = sim.run_until_true(cond, start + limit, step)
    return None if at is None else round(at - start, 3)


def _queued(sim: Simulation, i: int) -> bool:
    """Whether member i still has gossip to retransmit (memberlist's or Serf's queues)."""
    serf = sim.serfs[i]
    return bool(
        len(sim.cores[i].broadcasts)
        or len(serf.intent_queue)
        or len(serf.event_queue)
        or len(serf.query_queue)
    )


def run_pool(n: int, seed: int, loss: float, limit: float, formation: bool = True) -> dict:
    """All measurements for one pool size; see the module docstring. Without `formation`
    the pool starts converged (Simulation.seed_converged) and formation is not measured."""
    wall = time.monotonic()
    rng = random.Random(seed)
    net = NetworkModel(loss=loss, latency_min=0.0005, latency_max=0.005)
    # N members plus the one that joins later (started only then).
    sim = Simulation(n + 1, seed, config=MemberlistConfig.lan(), net=net)
    pool = list(range(n))
    formed: float | None = None
    if formation:
        for i in pool:
            sim.start(i)
        for i in pool[1:]:
            sim.join(i, 0)
        formed = _wait(sim, lambda: sim.converged(pool), limit, 1.0)
    else:
        sim.seed_converged(pool)
    formed_wall = time.monotonic() - wall

    # Let the join news finish its retransmissions: the traffic window is the quiet pool's.
    settle = _wait(sim, lambda: not any(_queued(sim, i) for i in pool), limit, 1.0)
    # Quiet traffic window of the converged pool.
    sim.udp_bytes = sim.packets_sent = sim.push_pull_bytes = sim.push_pulls = 0
    sim.count_push_pull = True
    sim.run_until(sim.now + TRAFFIC_WINDOW_S)
    sim.count_push_pull = False
    per = n * TRAFFIC_WINDOW_S
    exchange = sim.push_pull_bytes / sim.push_pulls if sim.push_pulls else 0.0
    interval = push_pull_scale(sim.config.push_pull_interval, n)
    traffic = {
        "udp_bytes_per_member_s": round(sim.udp_bytes / per, 1),
        "udp_packets_per_member_s": round(sim.packets_sent / per, 2),
        "push_pull_bytes_per_exchange": round(exchange),
        "push_pull_interval_s": interval,
        # Each member starts one exchange per scaled interval and answers one on average,
        # sending one side of each: one exchange's bytes per interval. (Counting the window
        # itself would overstate it: the first push-pulls after start-up are staggered over
        # the unscaled 30 s, so they bunch up right after formation.)
        "push_pull_bytes_per_member_s": round(exchange / interval, 1),
    }

    newcomer = n
    sim.start(newcomer)
    sim.join(newcomer, rng.choice(pool))
    name = sim.cores[newcomer].name
    convergence = _wait(sim, lambda: sim.all_see(name, ALIVE), limit, 0.05)

    victim = rng.choice(pool[1:])
    vname = sim.cores[victim].name
    sim.crash(victim)
    live = sim.live()
    start = sim.now
    first_suspect = first_dead = None
    all_dead = None
    while sim.now - start < limit:
        views = [sim.view(i, vname) for i in live]
        if first_suspect is None and any(
            v in (NodeStateKind.SUSPECT, NodeStateKind.DEAD) for v in views
        ):
            first_suspect = round(sim.now - start, 3)
        if first_dead is None and NodeStateKind.DEAD in views:
            first_dead = round(sim.now - start, 3)
        if all(v == NodeStateKind.DEAD for v in views):
            all_dead = round(sim.now - start, 3)
            break
        sim.run_until(sim.now + 0.05)
    return {
        "bench": "gossip-sim",
        "members": n,
        "loss": loss,
        "seed": seed,
        "formation_s": formed,
        "settle_s": settle,
        "convergence_s": convergence,
        "detection_first_suspect_s": first_suspect,
        "detection_first_dead_s": first_dead,
        "detection_all_dead_s": all_dead,
        **traffic,
        "packets_lost_pct": round(100.0 * sim.packets_lost / max(sim.packets_sent, 1), 2),
        "wall_s_formation": round(formed_wall, 1),
        "wall_s": round(time.monotonic() - wall, 1),
    }


def view_bytes(n: int, seed: int) -> dict:
    """Python heap bytes per member view (N * (N - 1) views) in a converged pool after 5
    simulated seconds, by tracemalloc: what the simulation's N^2 memory is made of."""
    import gc
    import tracemalloc

    tracemalloc.start(1)
    try:
        net = NetworkModel(loss=0.01, latency_min=0.0005, latency_max=0.005)
        sim = Simulation(n, seed, config=MemberlistConfig.lan(), net=net)
        for i in range(n):
            sim.start(i)
        gc.collect()
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        sim.seed_converged(list(range(n)))
        sim.run_until(sim.now + 5.0)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        views = n * (n - 1)
        top = tracemalloc.take_snapshot().compare_to(before, "lineno")[:6]
    finally:
        tracemalloc.stop()
    return {
        "bench": "gossip-sim-view-bytes",
        "members": n,
        "bytes_per_view": round(grown / views),
        "top": [
            {"where": str(st.traceback), "bytes_per_view": round(st.size_diff / views, 1)}
            for st in top
        ],
    }


def render(rows: list[dict]) -> str:
    head = (
        f"{'N':>6}{'form s':>9}{'conv s':>9}{'suspect s':>11}{'dead 1st':>10}{'dead all':>10}"
        f"{'UDP B/m/s':>11}{'pkt/m/s':>9}{'TCP B/m/s':>11}{'wall s':>8}"
    )
    lines = [head, "-" * len(head)]

    def f(v: object) -> str:
        return "-" if v is None else str(v)

    for r in rows:
        lines.append(
            f"{r['members']:>6}{f(r['formation_s']):>9}{f(r['convergence_s']):>9}"
            f"{f(r['detection_first_suspect_s']):>11}{f(r['detection_first_dead_s']):>10}"
            f"{f(r['detection_all_dead_s']):>10}{r['udp_bytes_per_member_s']:>11}"
            f"{r['udp_packets_per_member_s']:>9}{r['push_pull_bytes_per_member_s']:>11}"
            f"{r['wall_s']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="consulpy bench gossip-sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--members", type=_members, default=[1000], help="comma-separated pool sizes (1000)"
    )
    ap.add_argument("--loss", type=_loss, default=0.01, help="UDP packet loss rate (0.01)")
    ap.add_argument("--seed", type=int, default=1, help="simulation seed (1)")
    ap.add_argument(
        "--limit", type=float, default=600.0, help="simulated seconds allowed per phase (600)"
    )
    ap.add_argument(
        "--formation",
        choices=("auto", "on", "off"),
        default="auto",
        help=f"measure formation by joins (auto: up to {FORMATION_AUTO_MAX} members; above, "
        "the pool starts converged: formation costs the simulation N^2 gossip)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--view-bytes",
        action="store_true",
        help="instead: heap bytes per member view in a converged pool (tracemalloc)",
    )
    args = ap.parse_args(argv)
    if args.limit <= 0:
        ap.error("--limit must be > 0")
    if args.view_bytes:
        for n in args.members:
            row = view_bytes(n, args.seed)
            print(json.dumps(row), flush=True)
            print(f"{n} members: {row['bytes_per_view']} B per view", file=sys.stderr)
            for t in row["top"]:
                print(f"  {t['bytes_per_view']:>7} B  {t['where']}", file=sys.stderr)
        return 0
    rows = []
    for n in args.members:
        print(f"simulating {n} members (loss {args.loss:.1%}) ...", file=sys.stderr, flush=True)
        form = args.formation == "on" or (args.formation == "auto" and n <= FORMATION_AUTO_MAX)
        row = run_pool(n, args.seed, args.loss, args.limit, formation=form)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(render(rows), file=sys.stderr)
    return 0
