"""Python runtime figures under Consul's `consul.runtime.*` names (their meaning adapted, see
docs/observability.md), plus the event loop's lag and open file descriptors."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
from typing import Any

from consulpy.metrics.registry import Registry

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Counting asyncio tasks walks every task (and listing /proc/self/fd every descriptor, where
# its size is not the count): with 20,000 parked blocking queries that cost 10-40 ms of the
# event loop per sample, straight into the watchers' latency. At most this often.
WALK_EVERY = 10.0


class RuntimeStats:
    """Sets the runtime gauges once a second and times garbage collections."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.gc_pause_total_ns = 0
        self._gc_start = 0
        self._walked_at = -WALK_EVERY
        self._tasks = 0
        self._fds_listed = 0

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter_ns()
        elif self._gc_start:
            pause = time.perf_counter_ns() - self._gc_start
            self._gc_start = 0
            self.gc_pause_total_ns += pause
            self.registry.sample("runtime.gc_pause_ns", float(pause))

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def sample(self, lag_ms: float | None = None) -> None:
        r = self.registry
        try:
            with open("/proc/self/statm", "rb") as f:
                size, resident = (int(x) for x in f.read().split()[:2])
            r.gauge("runtime.alloc_bytes", resident * _PAGE)
            r.gauge("runtime.sys_bytes", size * _PAGE)
        except OSError:
            pass
        now = time.monotonic()
        walk = now - self._walked_at >= WALK_EVERY
        if walk:
            self._walked_at = now
            try:
                self._tasks = len(asyncio.all_tasks())
            except RuntimeError:
                self._tasks = 0
        fds = _fd_count()
        if fds is None and walk:
            try:
                self._fds_listed = len(os.listdir("/proc/self/fd"))
            except OSError:
                self._fds_listed = 0
        r.gauge("runtime.open_fds", fds if fds is not None else self._fds_listed)
        r.gauge("runtime.num_goroutines", threading.active_count() + self._tasks)
        r.gauge("runtime.asyncio_tasks", self._tasks)
        r.gauge("runtime.total_gc_runs", sum(s["collections"] for s in gc.get_stats()))
        r.gauge("runtime.total_gc_pause_ns", self.gc_pause_total_ns)
        # Blocks held by Python's object allocator (every live small object, tracked by the
        # collector or not): Go's "allocated heap objects", without walking the heap.
        r.gauge("runtime.heap_objects", sys.getallocatedblocks())
        if lag_ms is not None:
            r.sample("runtime.event_loop_lag", lag_ms)


def _fd_count() -> int | None:
    """Open descriptors in O(1) where the kernel gives it (Linux 6.2+ reports the count as
    the size of /proc/self/fd); None where it does not."""
    try:
        size = os.stat("/proc/self/fd").st_size
    except OSError:
        return None
    return size if size > 0 else None
