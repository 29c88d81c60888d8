"""Go duration strings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consulpy.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("100ms", 0.1),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("2h45m", 9900.0),
        ("-1.5h", -5400.0),
        ("+3s", 3.0),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("1μs", 1e-6),
        ("5ns", 5e-9),
        ("72h", 259200.0),
        ("1h1m1s1ms", 3661.001),
    ],
)
def test_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "1.2.3s", "1 s", "--1s", "1h-2m"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_round_trips(ns):
    seconds = ns / 1e9
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-9, abs=1e-9)


def test_format_matches_go():
    assert [format_duration(s) for s in (0, 90, 0.2, 3600, 1.5, 5400.5)] == [
        "0s",
        "1m30s",
        "200ms",
        "1h0m0s",
        "1.5s",
        "1h30m0.5s",
    ]
