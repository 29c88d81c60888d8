"""The agent's pid file (Consul's `pid_file`): written once the agent runs, removed at exit, so
init scripts and monitors find the process and a stale file means it did not exit cleanly."""

from __future__ import annotations

import os
from pathlib import Path


def write_pid_file(path: str) -> None:
    """Write this process's id to `path` (the parent directory must exist)."""
    Path(path).write_text(f"{os.getpid()}", encoding="ascii")


def remove_pid_file(path: str) -> None:
    """Remove the pid file if it is still ours (another agent may have taken the path)."""
    target = Path(path)
    try:
        if target.read_text(encoding="ascii").strip() == str(os.getpid()):
            target.unlink()
    except FileNotFoundError:
        pass
