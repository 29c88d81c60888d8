"""`consulpy bench watch` end to end at a small size: both scenarios answer every watcher, and
a write to one key answers no other key's watcher."""

from __future__ import annotations

import json
import subprocess
import sys


def test_both_scenarios_report_every_watcher_answered() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "consulpy",
            "bench",
            "watch",
            "-n",
            "40",
            "--writes",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = {r["scenario"]: r for r in json.loads(out.stdout.strip().splitlines()[-1])}
    same, keys = results["same"], results["keys"]
    assert same["watchers"] == same["answered"] == 40
    assert same["p50_ms"] <= same["p99_ms"] <= same["max_ms"]
    assert keys["watchers"] == 40 and keys["writes"] == 10
    assert keys["spurious"] == 0
