"""The registry's arithmetic and rules, as /v1/agent/metrics reports them."""

from __future__ import annotations

import math

import pytest

from consulpy.metrics.registry import PrefixFilter, Registry


def test_interval_aggregates_follow_go_metrics() -> None:
    r = Registry()
    for v in (1.0, 2.0, 4.0):
        r.sample("api.http", v, (("method", "GET"), ("path", "v1_kv_")))
    r.incr("raft.apply")
    r.incr("raft.apply")
    r.gauge("runtime.alloc_bytes", 1234)
    body = r.rotate().as_json()
    assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert body["Timestamp"].endswith(" +0000 UTC")
    assert body["Points"] == []
    [sample] = body["Samples"]
    assert sample["Name"] == "consul.api.http"
    assert sample["Labels"] == {"method": "GET", "path": "v1_kv_"}
    assert (sample["Count"], sample["Sum"], sample["Min"], sample["Max"]) == (3, 7.0, 1.0, 4.0)
    assert sample["Rate"] == pytest.approx(0.7)
    assert sample["Mean"] == pytest.approx(7 / 3)
    assert sample["Stddev"] == pytest.approx(math.sqrt((3 * 21 - 49) / 6))
    [counter] = body["Counters"]
    assert (counter["Name"], counter["Count"], counter["Sum"], counter["Stddev"]) == (
        "consul.raft.apply",
        2,
        2.0,
        0.0,
    )
    assert body["Gauges"] == [{"Name": "consul.runtime.alloc_bytes", "Value": 1234.0, "Labels": {}}]


def test_reported_interval_is_the_last_finished_one() -> None:
    r = Registry()
    r.incr("a")
    assert [c["Name"] for c in r.reported().as_json()["Counters"]] == ["consul.a"]  # current
    r.rotate()
    r.incr("b")
    # a finished interval exists: it is shown, not the current one holding "b"
    assert [c["Name"] for c in r.reported().as_json()["Counters"]] == ["consul.a"]


def test_hostname_goes_into_gauge_keys_only() -> None:
    r = Registry()
    r.hostname = "node1"
    r.gauge("runtime.alloc_bytes", 1)
    r.incr("raft.apply")
    body = r.rotate().as_json()
    assert body["Gauges"][0]["Name"] == "consul.node1.runtime.alloc_bytes"
    assert body["Counters"][0]["Name"] == "consul.raft.apply"


def test_prefix_filter_longest_prefix_wins_and_block_wins_ties() -> None:
    f = PrefixFilter(["-consul.raft", "+consul.raft.apply", "+consul.x", "-consul.x"])
    assert not f.allows("consul.raft.commitTime")
    assert f.allows("consul.raft.apply")
    assert not f.allows("consul.x.y")
    assert f.allows("consul.kvs.apply")
    assert not PrefixFilter([], default=False).allows("consul.kvs.apply")
    with pytest.raises(ValueError, match="must begin with either"):
        PrefixFilter(["consul.raft"])


def test_filtered_metrics_are_not_recorded() -> None:
    r = Registry()
    r.set_filter(PrefixFilter(["-consul.api"]))
    r.sample("api.http", 1.0)
    r.incr("kvs.apply")
    body = r.rotate().as_json()
    assert body["Samples"] == []
    assert [c["Name"] for c in body["Counters"]] == ["consul.kvs.apply"]


def test_reload_applies_the_filter_only() -> None:
    from consulpy.metrics.telemetry import Telemetry, TelemetrySettings

    r = Registry()
    telemetry = Telemetry(r, TelemetrySettings.from_config({"metrics_prefix": "consul"}), "n1")
    r.incr("raft.apply")
    telemetry.reload(
        TelemetrySettings.from_config({"prefix_filter": ["-consul.raft"], "metrics_prefix": "x"})
    )
    r.incr("raft.apply")
    r.incr("kvs.apply")
    body = r.rotate().as_json()
    # the series recorded before the reload is blocked from now on; the prefix did not change
    assert [c["Name"] for c in body["Counters"]] == ["consul.kvs.apply"]
    assert telemetry.settings.metrics_prefix == "consul"


def test_prometheus_keeps_counters_and_expires_stale_gauges() -> None:
    from consulpy.metrics.prometheus import render

    r = Registry()
    r.now = 1000.0
    r.incr("raft.state.leader")
    r.gauge("autopilot.healthy", 1)
    r.now = 1000.0 + 120  # two minutes later, nothing recorded since
    text = render(r, retention=60).decode()
    assert "consul_raft_state_leader 1.0" in text
    assert "consul_autopilot_healthy" not in text


def test_bound_series_and_bulk_folding_count_every_value() -> None:
    """Hot paths record into bound series (`handle` + `add`) and values are folded in
    later: every value is still counted, once, in the interval, the cumulative Prometheus
    figures and the quantile window; clearing the registry keeps the handles working."""
    from consulpy.metrics.prometheus import render
    from consulpy.metrics.registry import COUNTER, PENDING_MAX, SAMPLE, WINDOW_MAX

    r = Registry()
    timer = r.handle(SAMPLE, "raft.fsm.apply")
    applies = r.handle(COUNTER, "raft.apply")
    n = PENDING_MAX + WINDOW_MAX + 10  # past the pending bound and the window size
    for i in range(n):
        timer.add(float(i))
        applies.add()
    r.sample("raft.fsm.apply", 0.5)  # the unbound call feeds the same series
    text = render(r, retention=60).decode()
    assert f"consul_raft_fsm_apply_count {n + 1}\n" in text
    assert f"consul_raft_apply {float(n)}\n" in text
    assert len(timer.window) == WINDOW_MAX and timer.window[-1] == 0.5
    body = r.rotate().as_json()
    [sample] = body["Samples"]
    assert (sample["Count"], sample["Min"], sample["Max"]) == (n + 1, 0.0, float(n - 1))
    assert sample["Sum"] == pytest.approx(n * (n - 1) / 2 + 0.5)
    [counter] = body["Counters"]
    assert (counter["Count"], counter["Sum"]) == (n, float(n))

    r.clear()
    assert "consul_raft" not in render(r, retention=60).decode()
    timer.add(2.0)
    assert r.snapshot().as_json()["Samples"][0]["Count"] == 1


def test_blocked_bound_series_records_nothing() -> None:
    from consulpy.metrics.registry import SAMPLE

    r = Registry()
    r.set_filter(PrefixFilter(["-consul.raft"]))
    timer = r.handle(SAMPLE, "raft.commitTime")
    timer.add(1.0)
    assert len(timer.pending) == 0 and r.snapshot().samples == []


def test_a_series_created_while_a_reader_walks_the_tables_does_not_break_it() -> None:
    """The Raft log store records from its fsync thread: a series it creates in the middle of
    a Prometheus scrape or an interval rotation must not abort the reader."""
    r = Registry()
    r.incr("raft.apply")
    r.sample("raft.commitTime", 1.0)
    r.gauge("runtime.alloc_bytes", 1.0)
    r.tick(r.now)
    seen = []
    for n, series in enumerate(r.series(retention=60.0)):
        seen.append(series.name)
        r.incr(f"late.counter{n}")
        r.sample(f"late.sample{n}", 1.0)
        r.gauge(f"late.gauge{n}", 1.0)
    assert {"raft.apply", "raft.commitTime", "runtime.alloc_bytes"} <= set(seen)
    assert r.rotate().counters
