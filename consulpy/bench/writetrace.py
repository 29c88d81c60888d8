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
    files = [load(p) for p in sorted(glob.glob(prefix + ".[0-9]*"))]
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


SEGMENTS = (
    ("endpoint: begin -> proposed", "leader begin", "leader proposed"),
    ("leader: proposed -> AppendEntries written", "leader proposed", "leader ae_sent"),
    ("leader: AppendEntries written -> own write starts", "leader ae_sent", "leader wal_submit"),
    ("leader: own write (hand-off + write + fsync)", "leader wal_submit", "leader wal_done"),
    ("leader: own write done -> seen on the loop", "leader wal_done", "leader wal_seen"),
    ("network: AppendEntries -> follower reads it", "leader ae_sent", "follower f_recv"),
    ("follower: read -> write starts", "follower f_recv", "follower wal_submit"),
    ("follower: write (hand-off + write + fsync)", "follower wal_submit", "follower wal_done"),
    ("follower: fsync done -> ack written", "follower wal_done", "follower ack_sent"),
    ("network: ack -> leader reads it", "follower ack_sent", "leader ack_recv"),
    ("leader: quorum durable -> apply starts", "quorum", "leader apply"),
    ("leader: apply (FSM)", "leader apply", "leader applied"),
    ("leader: applied -> proposer resumes", "leader applied", "leader resumed"),
    ("total: begin -> proposer resumes", "leader begin", "leader resumed"),
)


def report(prefix: str) -> str:
    rows = [dict(r) for r in timelines(prefix)]
    if not rows:
        return "no complete write timelines"
    for r in rows:
        # With 3 servers the leader's own write and the first ack make the quorum.
        r["quorum"] = max(r["leader wal_seen"], r["leader ack_recv"])
    own_last = sum(r["leader wal_seen"] > r["leader ack_recv"] for r in rows) / len(rows)
    lines = [
        f"{len(rows)} writes; the leader's own write came after the first ack in "
        f"{100 * own_last:.0f} % of them",
        f"{'segment (median, p90 in microseconds)':<52}{'p50':>8}{'p90':>8}",
    ]
    for name, a, b in SEGMENTS:
        d = sorted((r[b] - r[a]) * 1e6 for r in rows)
        p50 = statistics.median(d)
        p90 = d[min(len(d) - 1, int(0.9 * len(d)))]
        lines.append(f"{name:<52}{p50:>8.0f}{p90:>8.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1]))
