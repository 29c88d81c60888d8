"""Merge the servers' write-path traces (consulpy/raft/trace.py) into per-stage medians.

Usage: start the servers with CONSULPY_RAFT_TRACE=<prefix>, drive writes (e.g. wrk -c1 PUT),
stop them, then `python -m consulpy.bench.writetrace <prefix>`. The leader's file is the one
with `proposed` stages; for each traced write the follower whose acknowledgement left first is
the one that completed the quorum (with 3 servers). Prints, per stage, the median time since the
endpoint began (`begin`) and the median step from the stage before.
"""

from __future__ import annotations

import glob
import statistics
import sys
from collections import defaultdict

Times = dict[str, dict[int, float]]

LEADER = ("begin", "proposed", "wal_submit", "wal_start", "wal_done", "wal_seen")
FOLLOWER = ("f_recv", "wal_submit", "wal_start", "wal_done", "wal_seen", "ack_sent")
LEADER_END = ("ack_recv", "apply", "applied", "resumed")


def load(path: str) -> Times:
    """stage -> index -> first time it was recorded."""
    out: Times = defaultdict(dict)
    with open(path) as f:
        for line in f:
            stage, index, t = line.split()
            i, ts = int(index), float(t)
            seen = out[stage].get(i)
            if seen is None or ts < seen:
                out[stage][i] = ts
    return out


def timelines(prefix: str) -> list[list[tuple[str, float]]]:
    files = [load(p) for p in sorted(glob.glob(prefix + ".*"))]
    leaders = [f for f in files if f.get("proposed")]
    if len(leaders) != 1:
        raise SystemExit(f"expected one leader trace under {prefix}.*, found {len(leaders)}")
    lead = leaders[0]
    followers = [f for f in files if f is not lead]
    rows = []
    for index in sorted(lead["begin"]):
        row = [(f"leader {s}", lead[s][index]) for s in LEADER if index in lead.get(s, {})]
        sent = lead.get("ae_sent", {}).get(index)
        if sent is not None:
            row.append(("leader ae_sent", sent))
        acked = [f for f in followers if index in f.get("ack_sent", {})]
        if acked:
            first = min(acked, key=lambda f: f["ack_sent"][index])
            row += [(f"follower {s}", first[s][index]) for s in FOLLOWER if index in first[s]]
        row += [(f"leader {s}", lead[s][index]) for s in LEADER_END if index in lead.get(s, {})]
        if len(row) == len(LEADER) + 1 + len(FOLLOWER) + len(LEADER_END):
            rows.append(row)
    return rows


def report(prefix: str) -> str:
    rows = timelines(prefix)
    if not rows:
        return "no complete write timelines"
    names = [name for name, _ in rows[0]]
    lines = [f"{len(rows)} writes; medians in microseconds", f"{'stage':<24}{'since begin':>12}"]
    lines[-1] += f"{'step':>10}"
    for k, name in enumerate(names):
        since = statistics.median(r[k][1] - r[0][1] for r in rows) * 1e6
        step = statistics.median(r[k][1] - r[k - 1][1] for r in rows) * 1e6 if k else 0.0
        lines.append(f"{name:<24}{since:>12.0f}{step:>10.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1]))
