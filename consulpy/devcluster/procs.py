"""Detached processes that a later command can find again and stop, without ever signalling a
process that merely reuses a recorded pid.

Each process is started in a new session, so it leads its own process group (pgid = pid) and
a terminal's Ctrl-C does not reach it. It is identified by its pid *and* its start time (from
/proc, or `ps` where there is no /proc); a pid whose start time differs is someone else's.
Zombies count as gone: once our `up` has exited, its children are reaped by whoever adopted
them, which may be late.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_HAVE_PROC = (_PROC / "self" / "stat").exists()


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    pgid: int
    state: str
    started: str  # opaque start-time token; equal for the same process


def _proc_info_linux(pid: int) -> ProcInfo | None:
    try:
        data = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # fields 3.. (comm may hold spaces)
    return ProcInfo(pid, int(fields[2]), fields[0], fields[19])


def _ps(args: Sequence[str]) -> list[list[str]]:
    try:
        out = subprocess.run(
            ["ps", *args], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return []
    return [line.split(None, 3) for line in out.splitlines() if line.strip()]


def proc_info(pid: int) -> ProcInfo | None:
    """What the system says about `pid`, or None if there is no such process."""
    if _HAVE_PROC:
        return _proc_info_linux(pid)
    rows = _ps(["-o", "pid=,pgid=,stat=,lstart=", "-p", str(pid)])
    if not rows or len(rows[0]) < 4:
        return None
    return ProcInfo(int(rows[0][0]), int(rows[0][1]), rows[0][2], rows[0][3])


def _is_zombie(info: ProcInfo) -> bool:
    return info.state[:1] in ("Z", "X")


def start_token(pid: int) -> str | None:
    info = proc_info(pid)
    return info.started if info is not None else None


def is_running(pid: int, started: str | None) -> bool:
    """True if `pid` is still the process that had start token `started`, and not a zombie."""
    if not pid:
        return False
    info = proc_info(pid)
    if info is None or _is_zombie(info):
        return False
    return started is None or info.started == started


def group_members(pgid: int) -> list[ProcInfo]:
    """Live (non-zombie) processes of process group `pgid`."""
    members: list[ProcInfo] = []
    if _HAVE_PROC:
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            info = _proc_info_linux(int(entry.name))
            if info is not None and info.pgid == pgid and not _is_zombie(info):
                members.append(info)
        return members
    for row in _ps(["-A", "-o", "pid=,pgid=,stat="]):
        if len(row) >= 3 and int(row[1]) == pgid and row[2][:1] not in ("Z", "X"):
            members.append(ProcInfo(int(row[0]), pgid, row[2], ""))
    return members


@dataclass
class Tracked:
    """A process we started: its group leader's pid and start token."""

    name: str
    pid: int
    started: str | None

    def running(self) -> bool:
        return is_running(self.pid, self.started)

    def leftovers(self) -> list[ProcInfo]:
        """Processes of its group still alive (the leader included while it runs).

        Once the leader is gone, only processes of the group started no earlier than it count
        (on Linux, where start tokens are clock ticks): a reused pid cannot make us signal
        an unrelated, older process group."""
        if self.running():
            return group_members(self.pid)
        if not _HAVE_PROC or self.started is None:
            return []
        return [m for m in group_members(self.pid) if int(m.started) >= int(self.started)]

    def signal(self, sig: int) -> None:
        if self.running():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            return
        for member in self.leftovers():
            try:
                os.kill(member.pid, sig)
            except ProcessLookupError:
                pass


SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[Tracked, subprocess.Popen[bytes]]:
    """Start `argv` detached (new session), stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    # The children run with another working directory: they must import the consulpy that
    # started them (a source checkout), not whichever copy is installed.
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [SOURCE_ROOT, full_env.get("PYTHONPATH")])
    )
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log.write(f"==> dev-cluster: starting {name} at {stamp}: {' '.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
        )
    return Tracked(name, popen.pid, start_token(popen.pid)), popen


def stop(
    tracked: Iterable[Tracked], timeout: float, kill_after: float = 5.0
) -> tuple[list[Tracked], list[Tracked]]:
    """SIGTERM every group, wait up to `timeout`, then SIGKILL what is left and wait up to
    `kill_after`. Returns (the ones that needed SIGKILL, the ones still there after it)."""
    pending = [t for t in tracked if t.leftovers()]
    for t in pending:
        t.signal(signal.SIGTERM)
    killed = _wait_gone(pending, timeout)
    for t in killed:
        t.signal(signal.SIGKILL)
    return killed, _wait_gone(killed, kill_after)


def _wait_gone(pending: list[Tracked], timeout: float) -> list[Tracked]:
    deadline = time.monotonic() + timeout
    while pending:
        pending = [t for t in pending if t.leftovers()]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return pending
