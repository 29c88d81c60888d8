"""Process helpers for benchmarks: free ports, child processes in their own process groups,
readiness polling and per-process CPU accounting.

Every benchmark target (a consulpy agent, a reference server, an etcd member) runs as a child in
a process group of its own, so that stopping it also stops anything it forked, and so that a
Ctrl-C typed at the terminal reaches only the benchmark, which then stops its children in order.
Children also get SIGTERM from the kernel if the benchmark itself dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Ports for programs that only take a number: the one helper tests and benchmarks share.
from consulpy.util.ports import free_ports as free_ports

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGTERM when we die."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Proc:
    """A child process that leads its own process group; `stop()` ends the whole group."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the group, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait()
        # Members the leader left behind (it exited first) still get the signal.
        _signal_group(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start `argv` as the leader of a new process group, its output appended to `log_path`
    (in `cwd`: `python -m consulpy` there runs that source tree; `env`: None inherits ours)."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Proc(name=name, popen=popen, log_path=log_path)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    procs: Sequence[Proc] = (),
    interval: float = 0.05,
) -> None:
    """Poll `condition` until it holds; fail early (with its log) if one of `procs` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(
                    f"{proc.name} exited with code {proc.popen.returncode} while waiting for "
                    f"{what}; last log lines:\n{proc.log_tail()}"
                )
        if time.monotonic() >= deadline:
            tails = "\n".join(f"--- {p.name}:\n{p.log_tail()}" for p in procs)
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(interval)


def http_json(
    url: str, body: object | None = None, method: str | None = None, timeout: float = 2.0
) -> tuple[int, object]:
    """One small HTTP request; returns (status, decoded JSON or raw text). 0 = no connection."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@dataclass(frozen=True)
class Measured:
    """What one finished child used: exit code, its stdout, wall time and CPU seconds."""

    returncode: int
    stdout: str
    wall_s: float
    cpu_s: float


def run_measured(argv: Sequence[str], workdir: Path) -> Measured:
    """Run `argv` to completion and account exactly its own CPU (wait4's rusage of that child).

    The child leads its own process group and is killed if we are interrupted while it runs.
    """
    out_path = workdir / f"run-{os.getpid()}-{time.monotonic_ns()}.out"
    with open(out_path, "wb") as out:
        started = time.monotonic()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            _, status, usage = os.wait4(popen.pid, 0)
        except BaseException:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
            raise
        wall = time.monotonic() - started
    popen.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text(errors="replace")
    out_path.unlink()
    return Measured(popen.returncode, text, wall, usage.ru_utime + usage.ru_stime)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C for the duration, so `finally` blocks stop our children."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Target:
    """Something a benchmark drives over HTTP: its addresses and how to stop what was started.

    `api` names the wire dialect ("consul" or "etcd"). `procs` are the processes started for it
    (empty for an agent that was already running); their CPU use is reported next to the load
    generator's. `cleanups` run after the processes stopped (e.g. removing temp data dirs).
    """

    name: str
    api: str
    addrs: list[str]
    procs: list[Proc] = field(default_factory=list)
    token: str | None = None  # consul: the token of this target's requests (None: --token)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()

    def cpu_seconds(self) -> float | None:
        if not self.procs:
            return None
        return sum(cpu_seconds(p.pid) for p in self.procs)
