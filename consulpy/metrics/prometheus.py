"""Prometheus text exposition (format 0.0.4) of the registry, named as Consul names them.

prometheus_client supplies the Python process collectors (`process_*`, `python_gc_*`,
`python_info`, Consul's `go_*` stand-ins) and the number formatting. Consul's own series are
written here: prometheus_client's encoder appends `_total` to every counter's TYPE line,
while Consul's counters keep their bare names (`consul_raft_apply`), which dashboards use.
"""

from __future__ import annotations

import math
import re

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.utils import floatToGoString

from consulpy.metrics.registry import COUNTER, GAUGE, Registry, Series

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.9, 0.99)

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")

_process = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=_process)
GCCollector(registry=_process)
PlatformCollector(registry=_process)


def flat_name(key: str) -> str:
    """go-metrics' flattening: dots, spaces, '=', '-' and '/' (and anything else Prometheus
    refuses) become '_', case is kept: consul.raft.leader.lastContact ->
    consul_raft_leader_lastContact."""
    return _INVALID.sub("_", key)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_str(labels: tuple[tuple[str, str], ...], extra: str = "") -> str:
    parts = [f'{flat_name(k)}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def render(registry: Registry, retention: float) -> bytes:
    """The whole scrape body: Consul's series updated within `retention`, then the
    process collectors."""
    families: dict[str, tuple[str, list[Series]]] = {}
    for series in registry.series(retention):
        name = flat_name(series.key)
        kind = series.kind
        entry = families.get(name)
        if entry is None:
            families[name] = (kind, [series])
        elif entry[0] == kind:
            entry[1].append(series)
    out: list[str] = []
    for name in sorted(families):
        kind, members = families[name]
        ptype = "gauge" if kind == GAUGE else "counter" if kind == COUNTER else "summary"
        out.append(f"# HELP {name} {name}\n# TYPE {name} {ptype}\n")
        for series in sorted(members, key=lambda s: s.labels):
            if kind == GAUGE:
                out.append(f"{name}{_label_str(series.labels)} {floatToGoString(series.value)}\n")
            elif kind == COUNTER:
                out.append(f"{name}{_label_str(series.labels)} {floatToGoString(series.total)}\n")
            else:
                values = sorted(series.prev_window + series.window)
                for q in QUANTILES:
                    labels = _label_str(series.labels, f'quantile="{q}"')
                    out.append(f"{name}{labels} {floatToGoString(_quantile(values, q))}\n")
                labels = _label_str(series.labels)
                out.append(f"{name}_sum{labels} {floatToGoString(series.total)}\n")
                out.append(f"{name}_count{labels} {series.total_count}\n")
    return "".join(out).encode("utf-8") + generate_latest(_process)
