"""Write-path stage timestamps, to see where one write's time goes across the servers.

Off unless the environment sets CONSULPY_RAFT_TRACE to a path prefix: each process then
appends `stage index monotonic_seconds` lines to `<prefix>.<pid>`. CLOCK_MONOTONIC is one
clock for every process on the machine, so the servers' files merge into one timeline per
log index (`python -m consulpy.bench.writetrace <prefix>`). The call sites test ENABLED first,
so a server that does not trace pays one global lookup per stage.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import threading
import time

_PREFIX = os.environ.get("CONSULPY_RAFT_TRACE", "")
ENABLED = bool(_PREFIX)

_records: list[tuple[str, int, float]] = []
_lock = threading.Lock()
_FLUSH_AT = 4096


_begun: contextvars.ContextVar[float] = contextvars.ContextVar("raft_trace_begun", default=0.0)


def begin() -> None:
    """The application's request starts now (before it knows its log index): the proposal
    made later in the same task records this time as stage `begin`."""
    _begun.set(time.monotonic())


def proposed(index: int) -> None:
    """The task's request was proposed at `index`: record `begin` (if any) and `proposed`."""
    began = _begun.get()
    if began:
        _records.append(("begin", index, began))
    mark("proposed", index)


def mark(stage: str, index: int) -> None:
    """Record that the write at log `index` reached `stage` now (any thread)."""
    _records.append((stage, index, time.monotonic()))
    if len(_records) >= _FLUSH_AT:
        flush()


def flush() -> None:
    """Append what was recorded to this process's file."""
    with _lock:
        global _records
        batch, _records = _records, []
        if not batch or not _PREFIX:
            return
        with open(f"{_PREFIX}.{os.getpid()}", "a") as f:
            f.writelines(f"{s} {i} {t:.7f}\n" for s, i, t in batch)


if ENABLED:
    atexit.register(flush)
