"""Metrics: one process-wide registry (as go-metrics' global one in Consul) that every layer
records into with Consul's metric names, the in-memory intervals behind /v1/agent/metrics,
the Prometheus exposition and the statsd/dogstatsd sinks.

This package imports nothing else from consulpy, so the raft and gossip libraries can be
handed its recording functions without depending on the rest.

    from consulpy.metrics import METRICS
    METRICS.incr("raft.apply")
    METRICS.measure_since("kvs.apply", start)      # start = time.perf_counter()
"""

from consulpy.metrics.registry import Labels, Registry

METRICS = Registry()

__all__ = ["METRICS", "Labels", "Registry"]
