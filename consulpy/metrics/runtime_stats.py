"""Python runtime figures under Consul's `consul.runtime.*` names (their meaning adapted, see
docs/observability.md), plus the event loop's lag and open file descriptors."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from typing import Any

from consulpy.metrics.registry import Registry

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
HEAP_OBJECTS_EVERY = 10.0  # gc.get_objects() walks the heap: at most this often


class RuntimeStats:
    """Sets the runtime gauges once a second and times garbage collections."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.gc_pause_total_ns = 0
        self._gc_start = 0
        self._heap_at = 0.0
        self._heap_objects = 0

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
        try:
            r.gauge("runtime.open_fds", len(os.listdir("/proc/self/fd")))
        except OSError:
            pass
        tasks = 0
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:
            pass
        r.gauge("runtime.num_goroutines", threading.active_count() + tasks)
        r.gauge("runtime.asyncio_tasks", tasks)
        r.gauge("runtime.total_gc_runs", sum(s["collections"] for s in gc.get_stats()))
        r.gauge("runtime.total_gc_pause_ns", self.gc_pause_total_ns)
        now = time.monotonic()
        if now - self._heap_at >= HEAP_OBJECTS_EVERY:
            self._heap_at = now
            self._heap_objects = len(gc.get_objects())
        r.gauge("runtime.heap_objects", self._heap_objects)
        if lag_ms is not None:
            r.sample("runtime.event_loop_lag", lag_ms)
