"""Conversion of a value's raw text to a field's type, with Go's `strconv` rules.

go-bexpr keeps every value as text and converts it with `strconv.ParseInt(s, 0, 64)`,
`ParseFloat(s, 64)` and `ParseBool(s)` once it knows the selected field's type, so
`ServicePort == "8080"` and `ServicePort == 0x1F90` both compare as numbers. The error texts
are Go's, because they end up in the HTTP error body.
"""

from __future__ import annotations

import math
import re

from consulpy.util.goparse import parse_bool
from consulpy.util.goquote import go_quote

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

_PREFIXES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_DECIMAL_FLOAT = re.compile(
    r"[0-9][0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]+)?|\.[0-9][0-9_]*([eE][+-]?[0-9_]+)?"
)
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


class CoerceError(ValueError):
    """Go's strconv error text, e.g. `strconv.ParseInt: parsing "x": invalid syntax`."""


def parse_int(raw: str) -> int:
    """`strconv.ParseInt(raw, 0, 64)`: optional sign, 0x/0o/0b or legacy leading-0 octal,
    underscores between digits."""
    body = raw[1:] if raw[:1] in "+-" else raw
    base = 10
    digits = body
    if body[:2] in _PREFIXES:
        base, digits = _PREFIXES[body[:2]], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    digits = digits.replace("_", "")
    if not digits or not _underscores_ok(body):
        raise _syntax("ParseInt", raw)
    value = 0
    for ch in digits:
        d = _DIGITS.find(ch.lower())
        if d < 0 or d >= base:
            raise _syntax("ParseInt", raw)
        value = value * base + d
    if raw.startswith("-"):
        value = -value
    if not INT64_MIN <= value <= INT64_MAX:
        raise CoerceError(f"strconv.ParseInt: parsing {go_quote(raw)}: value out of range")
    return value


def parse_float(raw: str) -> float:
    """`strconv.ParseFloat(raw, 64)` for decimal, hexadecimal and inf/nan spellings."""
    body = raw[1:] if raw[:1] in "+-" else raw
    sign = -1.0 if raw.startswith("-") else 1.0
    special = _SPECIAL_FLOATS.get(body.lower())
    if special is not None:
        return sign * special
    try:
        if body[:2] in ("0x", "0X") and _underscores_ok(body):
            value = float.fromhex(body.replace("_", ""))
        elif _DECIMAL_FLOAT.fullmatch(body) and _underscores_ok(body):
            value = float(body.replace("_", ""))
        else:
            raise ValueError(raw)
    except (ValueError, OverflowError):
        raise _syntax("ParseFloat", raw) from None
    if math.isinf(value):
        raise CoerceError(f"strconv.ParseFloat: parsing {go_quote(raw)}: value out of range")
    return sign * value


def parse_go_bool(raw: str) -> bool:
    value = parse_bool(raw)
    if value is None:
        raise _syntax("ParseBool", raw)
    return value


def coerce(raw: str, target: type) -> str | int | float | bool:
    """The raw text as a value of `target` (str, int, float or bool)."""
    if target is str:
        return raw
    if target is bool:
        return parse_go_bool(raw)
    if target is int:
        return parse_int(raw)
    if target is float:
        return parse_float(raw)
    raise TypeError(f"no coercion to {target!r}")


def _underscores_ok(text: str) -> bool:
    """Go's rule for `_` in numbers: only between digits, or right after a base prefix."""
    if "_" not in text:
        return True
    if text[:1] in "+-":
        text = text[1:]
    i, saw, hexdigits = 0, "^", False
    if len(text) >= 2 and text[0] == "0" and text[1] in "bBoOxX":
        i, saw, hexdigits = 2, "0", text[1] in "xX"
    for ch in text[i:]:
        if ch.isdigit() or (hexdigits and ch in "abcdefABCDEF"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _syntax(func: str, raw: str) -> CoerceError:
    return CoerceError(f"strconv.{func}: parsing {go_quote(raw)}: invalid syntax")
