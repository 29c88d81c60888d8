"""SuccessBeforePassing / FailuresBeforeWarning / FailuresBeforeCritical."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consulpy.agent.checks import CRITICAL, PASSING, WARNING, StatusFilter


def feed(f: StatusFilter, statuses: str) -> list[str | None]:
    names = {"p": PASSING, "w": WARNING, "c": CRITICAL}
    out = []
    for ch in statuses:
        applied = f.apply(names[ch], ch)
        out.append(applied[0] if applied else None)
    return out


def test_no_thresholds_apply_everything() -> None:
    assert feed(StatusFilter(), "pcwc") == [PASSING, CRITICAL, WARNING, CRITICAL]


def test_first_result_applies_immediately_then_thresholds_hold() -> None:
    f = StatusFilter(success_before_passing=2, failures_before_critical=3)
    # first failure applies at once (counters start satisfied); warning threshold defaults
    # to the critical one, so no warning step
    assert feed(f, "c") == [CRITICAL]
    assert feed(f, "p") == [None]
    assert feed(f, "p") == [PASSING]
    assert feed(f, "ccc") == [None, None, CRITICAL]


def test_failures_before_warning_gives_a_warning_step() -> None:
    f = StatusFilter(failures_before_warning=1, failures_before_critical=3)
    assert feed(f, "p") == [PASSING]
    assert feed(f, "ccc") == [WARNING, WARNING, CRITICAL]


def test_success_resets_failures_and_vice_versa() -> None:
    f = StatusFilter(success_before_passing=2, failures_before_critical=2)
    assert feed(f, "p") == [PASSING]
    assert feed(f, "cpcpc") == [None, None, None, None, None]
    assert feed(f, "c") == [CRITICAL]


def test_warning_result_counts_as_success() -> None:
    f = StatusFilter(success_before_passing=2)
    assert feed(f, "c") == [CRITICAL]
    assert feed(f, "ww") == [None, WARNING]


def test_output_travels_with_the_applied_status() -> None:
    f = StatusFilter(failures_before_warning=1, failures_before_critical=2)
    f.apply(PASSING, "fine")
    assert f.apply(CRITICAL, "boom") == (WARNING, "boom")


@given(
    st.integers(0, 4),
    st.integers(0, 4),
    st.lists(st.sampled_from([PASSING, CRITICAL]), max_size=30),
)
def test_thresholds_are_runs_of_consecutive_results(sbp: int, fbc: int, results: list) -> None:
    """An applied status is always backed by a long enough run of agreeing results."""
    f = StatusFilter(success_before_passing=sbp, failures_before_critical=fbc)
    run_status, run = None, 0
    for i, status in enumerate(results):
        run = run + 1 if status == run_status else 1
        run_status = status
        applied = f.apply(status, "")
        if applied is None:
            continue
        assert applied[0] == status
        if i >= max(sbp, fbc):  # past the satisfied-at-start window
            assert run >= (sbp if status == PASSING else fbc)
