"""Lamport clocks: Serf orders membership intents, user events and queries with three."""

from __future__ import annotations


class LamportClock:
    def __init__(self, start: int = 0) -> None:
        self._t = start

    def time(self) -> int:
        return self._t

    def increment(self) -> int:
        self._t += 1
        return self._t

    def witness(self, v: int) -> None:
        """Move past a time seen in a message, so our next stamp orders after it."""
        if v >= self._t:
            self._t = v + 1
