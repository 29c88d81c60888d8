"""Giving freed heap memory back to the operating system, and capping glibc's arenas.

Why: glibc's malloc returns memory to the kernel only from the top of each heap. After a Raft
snapshot, the server frees a whole snapshot interval of log entries and the serialisation
buffers, but those sit between long-lived rows (the KV values), so the process stays as large
as at its peak. `malloc_trim(0)` releases every whole free page wherever it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable

_M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    try:
        trim = libc.malloc_trim  # type: ignore[union-attr]
    except AttributeError:  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_free_memory() -> bool:
    """Return free heap pages to the OS where the allocator can (glibc); False where it cannot.
    Takes a few milliseconds on a large heap: call it from a worker thread, after big frees."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def limit_arenas(count: int) -> bool:
    """Let glibc's malloc use at most `count` arenas, unless MALLOC_ARENA_MAX is set (the
    operator's choice wins). Call before any thread starts. Why: a worker thread (the
    snapshot serialiser, the storage thread) gets an arena of its own, which keeps the peak
    of the buffers it ever held; `malloc_trim` does not give back a thread arena's top. In
    the main arena (count 1) the same memory is reused and trimmed. The threads of a server
    allocate little and mostly under the GIL, so they seldom wait on the arena's lock.
    Returns whether the limit was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
