"""Go's strconv parsers as Consul uses them on query parameters: ParseBool, and the integer
forms, which take ASCII digits only (Python's int() and str.isdigit() also take "²", "٣",
" 1" and "1_0")."""

from __future__ import annotations

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(raw: str) -> bool | None:
    """True/False, or None when Go would refuse the text."""
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    return None


def ascii_digits(raw: str) -> bool:
    """True when `raw` is one or more ASCII decimal digits (ParseUint's syntax)."""
    return raw.isascii() and raw.isdigit()


def parse_int(raw: str) -> int | None:
    """strconv.Atoi: an optional sign then ASCII digits, within int64; None otherwise."""
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    if not ascii_digits(digits):
        return None
    value = int(raw)
    return value if -(1 << 63) <= value < 1 << 63 else None
