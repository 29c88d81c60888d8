"""The agent's `telemetry { ... }` settings turned into a running metrics setup: the registry
configured (prefix, hostname, filter), the statsd/dogstatsd sinks, and the once-a-second task
that refreshes gauges, samples the runtime and closes 10 s intervals."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from consulpy.metrics.registry import PrefixFilter, Registry, Sink
from consulpy.metrics.runtime_stats import RuntimeStats
from consulpy.metrics.statsd import UDPLineSink

log = structlog.get_logger("consulpy.metrics")

SAMPLE_EVERY = 1.0


class TelemetryError(ValueError):
    """A telemetry setting that cannot be honoured; the text says which and why."""


@dataclass(frozen=True)
class TelemetrySettings:
    metrics_prefix: str = "consul"
    disable_hostname: bool = False
    filter_default: bool = True
    prefix_filter: tuple[str, ...] = ()
    prometheus_retention_time: float = 0.0
    statsd_address: str = ""
    dogstatsd_addr: str = ""
    dogstatsd_tags: tuple[str, ...] = ()
    retry_failed_connection: bool = True

    @property
    def prometheus(self) -> bool:
        return self.prometheus_retention_time > 0

    @classmethod
    def from_config(cls, telemetry: dict[str, Any]) -> TelemetrySettings:
        """From the agent config's telemetry map; TelemetryError for a bad filter rule."""
        t = telemetry
        settings = cls(
            metrics_prefix=str(t.get("metrics_prefix", "consul")),
            disable_hostname=bool(t.get("disable_hostname", False)),
            filter_default=bool(t.get("filter_default", True)),
            prefix_filter=tuple(t.get("prefix_filter") or ()),
            prometheus_retention_time=float(t.get("prometheus_retention_time") or 0.0),
            statsd_address=str(t.get("statsd_address") or ""),
            dogstatsd_addr=str(t.get("dogstatsd_addr") or ""),
            dogstatsd_tags=tuple(t.get("dogstatsd_tags") or ()),
            retry_failed_connection=bool(t.get("retry_failed_connection", True)),
        )
        settings.filter()  # raises on a bad rule
        return settings

    def filter(self) -> PrefixFilter:
        try:
            return PrefixFilter(self.prefix_filter, self.filter_default)
        except ValueError as exc:
            raise TelemetryError(f"telemetry.prefix_filter: {exc}") from exc


class Telemetry:
    """Runs the metrics of one process for its agent."""

    def __init__(self, registry: Registry, settings: TelemetrySettings, hostname: str) -> None:
        self.registry = registry
        self.settings = settings
        self.hostname = hostname
        self.sinks: list[UDPLineSink] = []
        self.runtime = RuntimeStats(registry)
        # Gauge refreshers run every second (Raft indexes, leadership, object counts...).
        self.collectors: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def _build_sinks(self) -> list[UDPLineSink]:
        s = self.settings
        sinks = []
        try:
            if s.statsd_address:
                sinks.append(UDPLineSink(s.statsd_address, retry=s.retry_failed_connection))
            if s.dogstatsd_addr:
                sinks.append(
                    UDPLineSink(
                        s.dogstatsd_addr,
                        dogstatsd=True,
                        tags=list(s.dogstatsd_tags),
                        retry=s.retry_failed_connection,
                    )
                )
        except ValueError as exc:
            for sink in sinks:
                sink._sock.close()
            raise TelemetryError(f"telemetry sink: {exc}") from exc
        return sinks

    def start(self) -> None:
        """Configure the registry and start the sinks and the sampler (TelemetryError when a
        sink address is unusable)."""
        s = self.settings
        self.sinks = self._build_sinks()
        # Consul: hostname prefixing of gauges only when some sink besides the in-memory one
        # exists and disable_hostname is false.
        external = bool(self.sinks) or s.prometheus
        hostname = self.hostname if external and not s.disable_hostname else None
        for sink in self.sinks:
            sink.hostname = hostname or ""
        sinks: list[Sink] = list(self.sinks)
        self.registry.configure(
            prefix=s.metrics_prefix,
            hostname=hostname,
            prefix_filter=s.filter(),
            sinks=sinks,
            keep_windows=s.prometheus,
        )
        for sink in self.sinks:
            sink.start()
        self.runtime.install()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def reload(self, settings: TelemetrySettings) -> None:
        """Only the filter reloads, as in Consul; the rest needs a restart."""
        self.registry.set_filter(settings.filter())
        self.settings = dataclasses.replace(
            self.settings,
            prefix_filter=settings.prefix_filter,
            filter_default=settings.filter_default,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        expected = loop.time() + SAMPLE_EVERY
        self.tick(None)
        while True:
            await asyncio.sleep(max(0.0, expected - loop.time()))
            lag = max(0.0, (loop.time() - expected) * 1000.0)
            expected = loop.time() + SAMPLE_EVERY
            try:
                self.tick(lag)
            except Exception:  # a broken collector must not stop the metrics
                log.exception("metrics sampling failed")

    def tick(self, lag_ms: float | None) -> None:
        self.registry.now = time.time()
        for collector in list(self.collectors):
            collector()
        self.runtime.sample(lag_ms)
        self.registry.tick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.runtime.uninstall()
        for sink in self.sinks:
            await sink.stop()
        self.sinks = []
        # Back to the defaults, so the process's next agent (tests) starts from a clean setup.
        self.registry.configure(
            prefix="consul",
            hostname=None,
            prefix_filter=PrefixFilter(()),
            sinks=[],
            keep_windows=True,
        )
