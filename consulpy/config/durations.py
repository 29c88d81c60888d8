"""Go duration strings ("10s", "1m30s", "1.5h", "100ms") as float seconds.

Consul stores every duration setting as a Go duration string, so we accept exactly the syntax of
Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers each followed by a
unit; a bare "0" is the only unit-less value.
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)([a-zA-Z\u00b5\u03bc]*)")


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds; ValueError names what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string like "10s", got {text!r}')
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        number, unit = m.group(1), m.group(2)
        if not unit:
            raise ValueError(f"missing unit in duration {text!r}")
        scale = _UNITS.get(unit)
        if scale is None:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        total += float(number) * scale
        pos = m.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Render seconds the way Go prints a Duration ("1m30s", "200ms", "0s"), for debug output."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    ns = round(abs(seconds) * 1e9)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1e3)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1e6)}ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{_trim(rest / 1e9)}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
