"""`consulpy lock`: mutual exclusion between real processes, semaphores, release when a holder
dies, and Consul's key layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.helpers import eventually
from tests.watch.test_watch import DEV_FLAGS

# A child that appends "start <pid>" / "end <pid>" around a short critical section; it waits
# for a go-file so tests decide how long it holds the lock without sleeping on a clock.
CHILD = (
    "import os, sys, time\n"
    "log, go = sys.argv[1], sys.argv[2]\n"
    "with open(log, 'a') as f: f.write(f'start {os.getpid()}\\n')\n"
    "while not os.path.exists(go): time.sleep(0.02)\n"
    "with open(log, 'a') as f: f.write(f'end {os.getpid()}\\n')\n"
)


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    proc = AgentProcess(*DEV_FLAGS, "-hcl", 'session_ttl_min = "1s"').start()
    try:
        yield proc
    finally:
        proc.kill()


def lock_proc(agent: AgentProcess, tmp: Path, *flags: str) -> subprocess.Popen[str]:
    child = tmp / "child.py"
    child.write_text(CHILD)
    env = dict(os.environ, CONSUL_HTTP_ADDR=agent.http_addr)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "consulpy",
            "lock",
            "-shell=false",
            *flags,
            sys.executable,
            str(child),
            str(tmp / "log"),
            str(tmp / "go"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def log_lines(tmp: Path) -> list[str]:
    path = tmp / "log"
    return path.read_text().splitlines() if path.exists() else []


def max_concurrent(lines: list[str]) -> int:
    running, peak = 0, 0
    for line in lines:
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


def kv(agent: AgentProcess, key: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://{agent.http_addr}/v1/kv/{key}", timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


async def test_two_locks_never_overlap(agent: AgentProcess, tmp_path: Path) -> None:
    first = lock_proc(agent, tmp_path, "jobs/one")
    second = lock_proc(agent, tmp_path, "jobs/one")
    try:
        await eventually(lambda: len(log_lines(tmp_path)) >= 1, timeout=20, what="a holder")
        entry = kv(agent, "jobs/one/.lock")[0]
        assert entry["Flags"] == 0x2DDCCBC058A50C18 and entry["Session"]
        (tmp_path / "go").touch()
        assert first.wait(30) == 0 and second.wait(30) == 0
        lines = log_lines(tmp_path)
        assert len(lines) == 4 and max_concurrent(lines) == 1, lines
        # released and cleaned up
        await eventually(lambda: kv(agent, "jobs/one/.lock") is None, what="lock key removed")
    finally:
        for p in (first, second):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)


async def test_semaphore_lets_n_run(agent: AgentProcess, tmp_path: Path) -> None:
    procs = [lock_proc(agent, tmp_path, "-n=2", "jobs/sem") for _ in range(3)]
    try:
        await eventually(lambda: len(log_lines(tmp_path)) >= 2, timeout=20, what="two holders")
        state = kv(agent, "jobs/sem/.lock")[0]
        assert state["Flags"] == 0xE0F69A2BAA414DE0
        import base64

        holders = json.loads(base64.b64decode(state["Value"]))
        assert holders["Limit"] == 2 and len(holders["Holders"]) == 2
        assert len(log_lines(tmp_path)) == 2  # the third waits
        (tmp_path / "go").touch()
        assert all(p.wait(30) == 0 for p in procs)
        lines = log_lines(tmp_path)
        assert len(lines) == 6 and max_concurrent(lines) == 2, lines
        # a lock on a semaphore prefix is refused
        out = consulpy("lock", f"-http-addr={agent.http_addr}", "-n=3", "jobs/sem", "true")
        assert out.returncode == 0 or "limit conflict" in out.stderr
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)


async def test_killed_holder_releases_after_lock_delay(agent: AgentProcess, tmp_path: Path) -> None:
    flags = ("-session-ttl=1s", "-lock-delay=1s", "jobs/killed")
    first = lock_proc(agent, tmp_path, *flags)
    await eventually(lambda: len(log_lines(tmp_path)) == 1, timeout=20, what="first holder")
    os.killpg(first.pid, signal.SIGKILL)  # the lock process and its child, no clean-up
    first.wait(10)
    (tmp_path / "go").touch()
    second = lock_proc(agent, tmp_path, *flags)
    try:
        assert second.wait(60) == 0, second.stderr.read() if second.stderr else ""
        assert log_lines(tmp_path)[-2].startswith("start")
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)


async def test_sigterm_is_forwarded_and_lock_released(agent: AgentProcess, tmp_path: Path) -> None:
    proc = lock_proc(agent, tmp_path, "jobs/term")
    await eventually(lambda: len(log_lines(tmp_path)) == 1, timeout=20, what="holder")
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    await eventually(lambda: kv(agent, "jobs/term/.lock") is None, what="lock released")
    assert log_lines(tmp_path) == [log_lines(tmp_path)[0]]  # the child died before "end"


def test_flag_errors_and_child_exit_code(agent: AgentProcess) -> None:
    a = f"-http-addr={agent.http_addr}"
    out = consulpy("lock", a, "-n=0", "p", "true")
    assert out.returncode == 1 and "Lock holder limit must be positive" in out.stderr
    out = consulpy("lock", a, "p")
    assert out.returncode == 1 and "Key prefix and child command must be specified" in out.stderr
    out = consulpy("lock", a, "-child-exit-code", "p", "exit 7")
    assert out.returncode == 2
    out = consulpy("lock", a, "p", "exit 7")
    assert out.returncode == 0
    out = consulpy("lock", a, "p", 'test "$CONSUL_LOCK_HELD" = true')
    assert out.returncode == 0
    out = consulpy("lock", a, "-child-exit-code", "p", 'test "$CONSUL_LOCK_HELD" = true')
    assert out.returncode == 0
