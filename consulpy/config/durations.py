"""Go duration strings in config files ("10s", "1m30s", "1.5h", "100ms"), as float seconds.

The parsing itself is Go's `time.ParseDuration`, shared with the HTTP API
(consulpy.util.durations); this module adds what config errors need: a clear message when the
value is not a string at all.
"""

from __future__ import annotations

from consulpy.util import durations as _go


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds; ValueError names what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string like "10s", got {text!r}')
    return _go.parse_duration(text)


def format_duration(seconds: float) -> str:
    """Render seconds the way Go prints a Duration ("1m30s", "200ms", "0s")."""
    return _go.format_duration(seconds)
