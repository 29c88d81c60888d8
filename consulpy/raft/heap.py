"""Giving freed heap memory back to the operating system.

Why: glibc's malloc returns memory to the kernel only from the top of each heap. After a Raft
snapshot, the server frees a whole snapshot interval of log entries and the serialisation
buffers, but those sit between long-lived rows (the KV values), so the process stays as large
as at its peak. `malloc_trim(0)` releases every whole free page wherever it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
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
