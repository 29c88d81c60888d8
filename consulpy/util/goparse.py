"""Go's strconv.ParseBool, which Consul uses for boolean query parameters."""

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
