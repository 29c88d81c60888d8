"""Seeded simulation sweep (see tests/raft/sim.py).

CI runs RAFT_SIM_SEEDS seeds (default 300) in chunks; set e.g. RAFT_SIM_SEEDS=5000 for a long
sweep and RAFT_SIM_SEED_START to shift the window. A failing seed is printed with the command
that replays it verbosely.
"""

from __future__ import annotations

import os

import pytest

from tests.raft.sim import InvariantViolation, run_seed

SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", "300"))
START = int(os.environ.get("RAFT_SIM_SEED_START", "0"))
CHUNK = 20
TOTALS: dict[str, int] = {}


def _chunks() -> list[tuple[int, int]]:
    return [(a, min(a + CHUNK, START + SEEDS)) for a in range(START, START + SEEDS, CHUNK)]


@pytest.mark.parametrize(("lo", "hi"), _chunks(), ids=lambda v: str(v))
def test_simulation_seeds(lo: int, hi: int) -> None:
    failures = []
    for seed in range(lo, hi):
        try:
            sim = run_seed(seed)
        except InvariantViolation as exc:
            failures.append(str(exc))
            continue
        for k, v in sim.stats.items():
            TOTALS[k] = TOTALS.get(k, 0) + v
        TOTALS["seeds"] = TOTALS.get("seeds", 0) + 1
        TOTALS["ops_checked"] = TOTALS.get("ops_checked", 0) + len(sim.history)
    assert not failures, "\n".join(failures)


def test_simulation_exercised_every_fault() -> None:
    """The sweep must not pass vacuously: faults, snapshots and membership all happened."""
    if TOTALS.get("seeds", 0) < 40:
        for seed in range(10_000, 10_040):
            sim = run_seed(seed)
            for k, v in sim.stats.items():
                TOTALS[k] = TOTALS.get(k, 0) + v
            TOTALS["ops_checked"] = TOTALS.get("ops_checked", 0) + len(sim.history)
    print("simulation totals:", TOTALS)
    for key in (
        "crashes",
        "partitions",
        "conf_changes",
        "transfers",
        "snapshots_installed",
        "snapshots_wanted",  # a follower needed entries released from memory
        "lease_reads",
    ):
        assert TOTALS.get(key, 0) > 0, key
    assert TOTALS["ops_checked"] > 1000
