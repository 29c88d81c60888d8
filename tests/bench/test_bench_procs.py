"""Process helpers: groups are stopped whole, early exits are reported, CPU is accounted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from consulpy.bench.procs import (
    cpu_seconds,
    free_ports,
    run_measured,
    spawn,
    wait_until,
)
from tests.bench.proctools import gone


def test_free_ports_are_distinct() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6 and all(p > 0 for p in ports)


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    log = tmp_path / "sh.log"
    # The shell forks a grandchild and prints its pid; both must go when the child is stopped.
    proc = spawn("sh", ["sh", "-c", "sleep 600 & echo $!; wait"], log)
    wait_until(lambda: log.read_text().strip().isdigit(), 30, "the grandchild pid", [proc])
    grandchild = int(log.read_text())
    assert not gone(grandchild)
    proc.stop(timeout=10)
    assert proc.popen.returncode is not None
    wait_until(lambda: gone(grandchild), 30, "the grandchild to exit")


def test_wait_until_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    proc = spawn("failing", ["sh", "-c", "echo boom-reason >&2; exit 3"], tmp_path / "f.log")
    with pytest.raises(RuntimeError, match=r"(?s)failing exited with code 3.*boom-reason"):
        wait_until(lambda: False, 30, "something that never comes", [proc])
    proc.stop()


def test_wait_until_times_out_with_a_clear_message() -> None:
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_until(lambda: False, 0.2, "the impossible")


def test_run_measured_accounts_the_child_cpu(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print(sum(i * i for i in range(3_000_000)))"]
    m = run_measured(argv, tmp_path)
    assert m.returncode == 0
    assert m.stdout.strip() == str(sum(i * i for i in range(3_000_000)))
    assert m.cpu_s > 0 and m.wall_s > 0
    assert list(tmp_path.iterdir()) == []  # its output file is removed


def test_cpu_seconds_of_a_live_and_a_missing_process() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(2**22 + 12345) == 0.0  # above pid_max: no such process
