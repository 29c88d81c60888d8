"""SIGKILL a Raft node process during a write burst; every acknowledged write must survive."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _spawn(data_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.raft.crash_child", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
        bufsize=1,
    )


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    assert proc.stdout is not None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("child produced no output in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"child exited early: {err[-2000:]}")
            return line.rstrip("\n")


def test_sigkill_during_write_burst_keeps_acknowledged_entries(tmp_path: Path) -> None:
    rng = random.Random(7)
    data_dir = tmp_path / "node"
    acked: dict[str, int] = {}
    rounds = 4
    for rnd in range(rounds + 1):
        proc = _spawn(data_dir)
        try:
            deadline = time.monotonic() + 60
            line = _read_line(proc, deadline)
            assert line.startswith("STATE "), line
            state = json.loads(line[6:])
            missing = [k for k in acked if state.get(k) != k]
            assert not missing, f"round {rnd}: {len(missing)} acknowledged writes lost"
            if rnd == rounds:
                break
            target = rng.randrange(100, 1500)
            n = 0
            while n < target:
                line = _read_line(proc, deadline)
                if line.startswith("ACK "):
                    _, index, key = line.split()
                    acked[key] = int(index)
                    n += 1
            proc.send_signal(signal.SIGKILL)  # mid-burst: writers are still proposing
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    assert len(acked) >= 400
    assert len(set(acked.values())) == len(acked)  # no index acknowledged twice
