"""The process-wide metrics registry: go-metrics' model (gauges, counters, samples; 10 s
in-memory intervals kept for a minute) with Consul's key building, prefix filter and sinks.

Recording sits on hot paths (every KV PUT records about seven values), so a record is one
dict lookup (none through a bound series, `Registry.handle`) and an append to its series'
array of pending doubles: the count, sum, sum of squares, min, max and Prometheus window are
folded in from it by C-level builtins when the sampler ticks (once a second) or a reader asks.
No locks (everything records from the event loop's thread; a stray record from an executor
thread may at worst lose a value, and readers walk copies of the series tables so that a
series such a thread creates meanwhile cannot break them), no clock read (series are stamped
from a coarse clock the sampler advances once a second), no float object kept alive by a
recorded value.
"""

from __future__ import annotations

import math
import operator
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

Labels = tuple[tuple[str, str], ...]

INTERVAL = 10.0  # seconds per in-memory interval, as Consul's inmem sink
RETAIN = 6  # intervals kept (one minute)
WINDOW_MAX = 2048  # observations kept per sample series for Prometheus quantiles
PENDING_MAX = 4096  # values a series holds before folding them in without waiting for a tick

GAUGE, COUNTER, SAMPLE = "gauge", "counter", "sample"


class Sink(Protocol):
    """Where every record is also sent (statsd, dogstatsd). Keys are the full dotted keys."""

    def gauge(self, key: str, value: float, labels: Labels) -> None: ...
    def counter(self, key: str, value: float, labels: Labels) -> None: ...
    def sample(self, key: str, value: float, labels: Labels) -> None: ...


class Series:
    """One metric name with one label set: its aggregate for the current interval, its
    cumulative total (Prometheus counters and summaries) and, for samples, a window of
    recent observations (Prometheus quantiles)."""

    __slots__ = (
        "allowed",
        "count",
        "key",
        "kind",
        "labels",
        "max",
        "min",
        "name",
        "pending",
        "prev_window",
        "registry",
        "seen",
        "sum",
        "sumsq",
        "total",
        "total_count",
        "value",
        "window",
    )

    def __init__(
        self, registry: Registry, kind: str, name: str, key: str, labels: Labels, allowed: bool
    ) -> None:
        self.registry = registry
        self.kind = kind
        self.name = name  # without prefix/host: "raft.apply"
        self.key = key  # full dotted key: "consul.raft.apply"
        self.labels = labels
        self.allowed = allowed
        self.seen = 0.0
        self.value = 0.0  # gauges
        self.total = 0.0
        self.total_count = 0
        # Values are kept as C doubles (array "d"), not float objects: a recorded value's
        # float is freed at once, so holding thousands of them costs no allocator churn.
        self.window = array("d")
        self.prev_window = array("d")
        self.pending = array("d")  # recorded, not folded in yet
        self.reset()

    def add(self, value: float = 1.0) -> None:
        """Record one value into this counter or sample series: what a hot path holding the
        series (`Registry.handle`) calls instead of `incr`/`sample`, skipping the lookup."""
        if self.allowed:
            pending = self.pending
            pending.append(value)
            if len(pending) >= PENDING_MAX or self.registry.sinks:
                self._added(value)

    def _added(self, value: float) -> None:
        """The rare rest of `add`: fold a full pending buffer, hand the value to the sinks."""
        registry = self.registry
        if len(self.pending) >= PENDING_MAX:
            self.fold(registry.now, registry.keep_windows)
        for sink in registry.sinks:
            if self.kind == COUNTER:
                sink.counter(self.key, value, self.labels)
            else:
                sink.sample(self.key, value, self.labels)

    def fold(self, now: float, keep_window: bool) -> None:
        """Fold the pending values into the interval's and the cumulative figures."""
        values = self.pending
        if not values:
            return
        self.pending = array("d")
        n = len(values)
        total = sum(values)
        self.count += n
        self.sum += total
        self.sumsq += sum(map(operator.mul, values, values))
        low, high = min(values), max(values)
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        self.total += total
        self.total_count += n
        self.seen = now
        if keep_window and self.kind == SAMPLE:
            window = self.window
            window.extend(values)
            if len(window) > WINDOW_MAX:  # the most recent observations
                del window[: len(window) - WINDOW_MAX]

    def forget(self) -> None:
        """Back to never recorded (the registry's `clear`; handles stay valid)."""
        self.seen = 0.0
        self.value = 0.0
        self.total = 0.0
        self.total_count = 0
        self.window = array("d")
        self.prev_window = array("d")
        self.pending = array("d")
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.sumsq = 0.0
        self.min = math.inf
        self.max = -math.inf


@dataclass(frozen=True)
class Aggregate:
    """A counter's or sample's figures over one interval (go-metrics' AggregateSample)."""

    name: str
    labels: Labels
    count: int
    sum: float
    sumsq: float
    min: float
    max: float

    def as_json(self) -> dict[str, object]:
        mean = self.sum / self.count if self.count else 0.0
        stddev = 0.0
        if self.count > 1:
            var = (self.count * self.sumsq - self.sum * self.sum) / (self.count * (self.count - 1))
            stddev = math.sqrt(max(var, 0.0))
        return {
            "Name": self.name,
            "Count": self.count,
            "Rate": self.sum / INTERVAL,
            "Sum": self.sum,
            "Min": self.min,
            "Max": self.max,
            "Mean": mean,
            "Stddev": stddev,
            "Labels": dict(self.labels),
        }


@dataclass
class Interval:
    """What was recorded in one 10 s interval (the in-memory sink's view)."""

    start: float  # wall clock, seconds
    gauges: list[tuple[str, Labels, float]] = field(default_factory=list)
    counters: list[Aggregate] = field(default_factory=list)
    samples: list[Aggregate] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "Timestamp": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(int(self.start))),
            "Gauges": [
                {"Name": k, "Value": _float32(v), "Labels": dict(lb)}
                for k, lb, v in sorted(self.gauges, key=lambda g: (g[0], sorted(g[1])))
            ],
            "Points": [],
            "Counters": [
                a.as_json() for a in sorted(self.counters, key=lambda a: (a.name, sorted(a.labels)))
            ],
            "Samples": [
                a.as_json() for a in sorted(self.samples, key=lambda a: (a.name, sorted(a.labels)))
            ],
        }


def _float32(value: float) -> float:
    """Consul reports gauge values as float32; keep integers exact, round the rest."""
    if value.is_integer() or not math.isfinite(value):
        return value
    return float(f"{value:.7g}")


class PrefixFilter:
    """Consul's prefix_filter: longest matching prefix decides, "-" wins over "+" on a tie,
    no match gives filter_default."""

    def __init__(self, rules: Iterable[str], default: bool = True) -> None:
        self.default = default
        self.rules: dict[str, bool] = {}
        for rule in rules:
            rule = rule.strip()
            if len(rule) < 2 or rule[0] not in "+-":
                raise ValueError(f"Filter rule must begin with either '+' or '-': {rule!r}")
            prefix, allow = rule[1:], rule[0] == "+"
            self.rules[prefix] = self.rules.get(prefix, True) and allow

    def allows(self, key: str) -> bool:
        best = -1
        verdict = self.default
        for prefix, allow in self.rules.items():
            if key.startswith(prefix) and len(prefix) > best:
                best, verdict = len(prefix), allow
        return verdict


class Registry:
    """Every metric the process records. `incr`, `gauge`, `sample` and `measure_since` are
    the recording calls; `rotate` closes an interval (called every 10 s by the sampler)."""

    def __init__(self) -> None:
        self.prefix = "consul"
        self.hostname: str | None = None  # set: gauges are keyed consul.<host>.<name>
        self.filter = PrefixFilter(())
        self.sinks: list[Sink] = []
        self.keep_windows = True  # Prometheus quantiles need the recent observations
        self.now = time.time()  # coarse clock, advanced by `tick`
        self._gauges: dict[tuple[str, Labels], Series] = {}
        self._counters: dict[tuple[str, Labels], Series] = {}
        self._samples: dict[tuple[str, Labels], Series] = {}
        self.intervals: deque[Interval] = deque(maxlen=RETAIN)
        self.current_start = math.floor(self.now / INTERVAL) * INTERVAL
        self.interval_listeners: list[Callable[[Interval], None]] = []

    # --- configuration -------------------------------------------------------------------

    def configure(
        self,
        *,
        prefix: str,
        hostname: str | None,
        prefix_filter: PrefixFilter,
        sinks: list[Sink],
        keep_windows: bool,
    ) -> None:
        self.fold()  # what was recorded under the previous settings
        self.prefix = prefix
        self.hostname = hostname
        self.filter = prefix_filter
        self.sinks = sinks
        self.keep_windows = keep_windows
        for table in (self._gauges, self._counters, self._samples):
            for series in list(table.values()):
                series.key = self._key(series.kind, series.name)
                series.allowed = prefix_filter.allows(series.key)

    def set_filter(self, prefix_filter: PrefixFilter) -> None:
        """Reloadable part of the telemetry settings."""
        self.fold()
        self.filter = prefix_filter
        for table in (self._gauges, self._counters, self._samples):
            for series in list(table.values()):
                series.allowed = prefix_filter.allows(series.key)

    def _key(self, kind: str, name: str) -> str:
        parts = [self.prefix] if self.prefix else []
        if kind == GAUGE and self.hostname:
            parts.append(self.hostname)
        parts.append(name)
        return ".".join(parts)

    def _new(
        self, table: dict[tuple[str, Labels], Series], kind: str, name: str, labels: Labels
    ) -> Series:
        key = self._key(kind, name)
        series = Series(self, kind, name, key, labels, self.filter.allows(key))
        table[(name, labels)] = series
        return series

    # --- recording (hot path) ------------------------------------------------------------

    def handle(self, kind: str, name: str, labels: Labels = ()) -> Series:
        """The counter (COUNTER) or sample (SAMPLE) series `name` with `labels`, for a hot
        path to record into with `Series.add`: the same series `incr`/`sample` feed."""
        table = self._counters if kind == COUNTER else self._samples
        series = table.get((name, labels))
        if series is None:
            series = self._new(table, kind, name, labels)
        return series

    def incr(self, name: str, value: float = 1.0, labels: Labels = ()) -> None:
        series = self._counters.get((name, labels))
        if series is None:
            series = self._new(self._counters, COUNTER, name, labels)
        if series.allowed:
            pending = series.pending
            pending.append(value)
            if len(pending) >= PENDING_MAX:
                series.fold(self.now, self.keep_windows)
            if self.sinks:
                for sink in self.sinks:
                    sink.counter(series.key, value, labels)

    def gauge(self, name: str, value: float, labels: Labels = ()) -> None:
        series = self._gauges.get((name, labels))
        if series is None:
            series = self._new(self._gauges, GAUGE, name, labels)
        if not series.allowed:
            return
        series.value = float(value)
        series.count = 1
        series.seen = self.now
        if self.sinks:
            for sink in self.sinks:
                sink.gauge(series.key, value, labels)

    def sample(self, name: str, value: float, labels: Labels = ()) -> None:
        series = self._samples.get((name, labels))
        if series is None:
            series = self._new(self._samples, SAMPLE, name, labels)
        if series.allowed:
            pending = series.pending
            pending.append(value)
            if len(pending) >= PENDING_MAX:
                series.fold(self.now, self.keep_windows)
            if self.sinks:
                for sink in self.sinks:
                    sink.sample(series.key, value, labels)

    def measure_since(self, name: str, start: float, labels: Labels = ()) -> None:
        """A timer: milliseconds since `start` (a `time.perf_counter()` reading)."""
        value = (time.perf_counter() - start) * 1000.0
        series = self._samples.get((name, labels))
        if series is None:
            series = self._new(self._samples, SAMPLE, name, labels)
        if series.allowed:
            pending = series.pending
            pending.append(value)
            if len(pending) >= PENDING_MAX:
                series.fold(self.now, self.keep_windows)
            if self.sinks:
                for sink in self.sinks:
                    sink.sample(series.key, value, labels)

    def fold(self) -> None:
        """Fold every series' pending values in (before anything reads the figures)."""
        now, keep = self.now, self.keep_windows
        for table in (self._counters, self._samples):
            for series in list(table.values()):
                if series.pending:
                    series.fold(now, keep)

    # --- intervals -----------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Advance the coarse clock; close the interval when 10 s have passed."""
        self.now = time.time() if now is None else now
        self.fold()
        if self.now - self.current_start >= INTERVAL:
            self.rotate()

    def snapshot(self) -> Interval:
        """The current (unfinished) interval's figures."""
        self.fold()
        out = Interval(self.current_start)
        for series in list(self._gauges.values()):
            if series.allowed and series.count and series.seen >= self.current_start:
                out.gauges.append((series.key, series.labels, series.value))
        for table, dest in ((self._counters, out.counters), (self._samples, out.samples)):
            for series in list(table.values()):
                if series.allowed and series.count:
                    dest.append(
                        Aggregate(
                            series.key,
                            series.labels,
                            series.count,
                            series.sum,
                            series.sumsq,
                            series.min,
                            series.max,
                        )
                    )
        return out

    def rotate(self) -> Interval:
        done = self.snapshot()
        self.intervals.append(done)
        for table in (self._counters, self._samples):
            for series in list(table.values()):
                if series.count:
                    series.reset()
                series.prev_window, series.window = series.window, array("d")
        self.current_start = math.floor(self.now / INTERVAL) * INTERVAL
        for listener in list(self.interval_listeners):
            listener(done)
        return done

    def reported(self) -> Interval:
        """What /v1/agent/metrics shows: the last finished interval, else the current one."""
        if self.intervals:
            return self.intervals[-1]
        return self.snapshot()

    # --- Prometheus view -----------------------------------------------------------------

    def series(self, retention: float) -> Iterable[Series]:
        """Every allowed series for Prometheus: gauges updated within `retention` seconds,
        counters and timers once recorded (cumulative values must not vanish and come back,
        which is what Consul's predeclared series give it)."""
        self.fold()
        horizon = self.now - retention
        for series in list(self._gauges.values()):
            if series.allowed and series.seen and series.seen >= horizon:
                yield series
        for table in (self._counters, self._samples):
            for series in list(table.values()):
                if series.allowed and series.seen:
                    yield series

    def clear(self) -> None:
        """Forget every recorded value and interval (tests). Series objects are kept, reset,
        so the handles hot paths hold keep recording into the registry."""
        self._gauges.clear()
        for table in (self._counters, self._samples):
            for series in list(table.values()):
                series.forget()
        self.intervals.clear()
