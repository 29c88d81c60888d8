"""Looking at processes from the outside, for tests that check nothing is left running."""

from __future__ import annotations

from pathlib import Path


def gone(pid: int) -> bool:
    """The process has exited (a zombie its new parent has not reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def children(pid: int) -> set[int]:
    """Direct children of `pid`, whichever of its threads started them."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(p) for p in (task / "children").read_text().split())
    return found
