"""DeregisterCriticalServiceAfter ledger, driven by an explicit clock."""

from __future__ import annotations

from consulpy.agent.checks import CriticalReaper


def test_service_is_due_after_being_critical_long_enough() -> None:
    reaper = CriticalReaper()
    reaper.track("c1", "web-1", 90.0)
    reaper.observe("c1", "critical", now=100.0)
    assert reaper.due(150.0) == []
    assert reaper.due(190.5) == ["web-1"]


def test_any_other_status_resets_the_clock() -> None:
    reaper = CriticalReaper()
    reaper.track("c1", "web-1", 60.0)
    reaper.observe("c1", "critical", now=0.0)
    reaper.observe("c1", "critical", now=30.0)  # still the same critical spell
    reaper.observe("c1", "warning", now=50.0)
    reaper.observe("c1", "critical", now=55.0)
    assert reaper.due(100.0) == []
    assert reaper.due(116.0) == ["web-1"]


def test_minimum_and_opt_out() -> None:
    reaper = CriticalReaper()
    reaper.track("c1", "web-1", 5.0)  # raised to Consul's 1 minute floor
    reaper.track("c2", "", 90.0)  # node-level checks never reap
    reaper.track("c3", "web-3", 0.0)
    for check in ("c1", "c2", "c3"):
        reaper.observe(check, "critical", now=0.0)
    assert reaper.due(30.0) == []
    assert reaper.due(61.0) == ["web-1"]


def test_untrack_and_forget_service() -> None:
    reaper = CriticalReaper(min_after=1.0)
    reaper.track("a", "web-1", 1.0)
    reaper.track("b", "web-1", 1.0)
    reaper.track("c", "db-1", 1.0)
    for check in "abc":
        reaper.observe(check, "critical", now=0.0)
    reaper.untrack("c")
    assert reaper.due(5.0) == ["web-1"]
    reaper.forget_service("web-1")
    assert reaper.due(5.0) == []


def test_retracking_keeps_the_running_clock() -> None:
    reaper = CriticalReaper(min_after=1.0)
    reaper.track("a", "web-1", 10.0)
    reaper.observe("a", "critical", now=0.0)
    reaper.track("a", "web-1", 5.0)  # check re-registered with a new setting
    assert reaper.due(6.0) == ["web-1"]
