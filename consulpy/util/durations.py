"""Go `time.Duration` text: parsing ("1m30s", "100ms", "1.5h") and formatting ("1m30s").

Consul accepts durations as Go duration strings or as JSON numbers of nanoseconds, and
renders them back in Go's format; clients compare these strings, so we match Go exactly.
"""

from __future__ import annotations

import math
import re

from consulpy.util.goquote import go_quote

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([^0-9.]*)")  # ASCII digits only, as Go
MAX_NS = (1 << 63) - 1


class DurationError(ValueError):
    pass


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string into integer nanoseconds (raises DurationError)."""
    original = text
    if not text:
        raise DurationError(f"time: invalid duration {go_quote(original)}")
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise DurationError(f"time: invalid duration {go_quote(original)}")
    pos = 0
    total = 0.0
    exact = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise DurationError(f"time: invalid duration {go_quote(original)}")
        number, unit = match.groups()
        # More digits overflow int64 whatever the unit (and int() refuses very long ones).
        if len(number.partition(".")[0]) > 40:
            raise DurationError(f"time: invalid duration {go_quote(original)}")
        if not unit:
            raise DurationError(f"time: missing unit in duration {go_quote(original)}")
        scale = _UNITS_NS.get(unit)
        if scale is None:
            raise DurationError(
                f"time: unknown unit {go_quote(unit)} in duration {go_quote(original)}"
            )
        if "." in number:
            total += float(number) * scale
        else:
            exact += int(number) * scale
        pos = match.end()
    result = exact + round(total)
    if result > MAX_NS:
        raise DurationError(f"time: invalid duration {go_quote(original)}")
    return sign * result


def parse_duration(text: str) -> float:
    """Parse a Go duration string into float seconds."""
    return parse_duration_ns(text) / 1e9


def duration_from_json(value: object) -> int:
    """A duration given in JSON: a Go duration string, or a number of nanoseconds."""
    if isinstance(value, bool):
        raise DurationError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        # Go's time.Duration is an int64 of nanoseconds; NaN and infinities are not numbers.
        if isinstance(value, float) and not math.isfinite(value):
            raise DurationError(f"invalid duration {value!r}")
        if not -MAX_NS - 1 <= value <= MAX_NS:
            raise DurationError(
                f"json: cannot unmarshal number {value} into Go value of type time.Duration"
            )
        return int(value)
    if isinstance(value, str):
        return parse_duration_ns(value)
    raise DurationError(f"invalid duration {value!r}")


def _fmt_frac(value: int, prec: int) -> str:
    """Render value / 10**prec with trailing zeros removed (Go's fmtFrac + fmtInt)."""
    whole, frac = divmod(value, 10**prec)
    if frac == 0:
        return str(whole)
    digits = f"{frac:0{prec}d}".rstrip("0")
    return f"{whole}.{digits}"


def format_duration_ns(ns: int) -> str:
    """Format nanoseconds exactly as Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            out = _fmt_frac(u, 3) + "µs"
        else:
            out = _fmt_frac(u, 6) + "ms"
    else:
        seconds_part = _fmt_frac(u % 60_000_000_000, 9) + "s"
        minutes = u // 60_000_000_000
        if minutes == 0:
            out = seconds_part
        else:
            hours, minutes = divmod(minutes, 60)
            out = (f"{hours}h" if hours else "") + f"{minutes}m" + seconds_part
    return "-" + out if neg else out


def format_duration(seconds: float) -> str:
    return format_duration_ns(round(seconds * 1e9))
