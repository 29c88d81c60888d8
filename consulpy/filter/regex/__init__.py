"""RE2 regular expressions, as Go's `regexp` (and so go-bexpr's `matches`) understands them,
matched in linear time.

    rx = compile_regex(r"^web-\\d+$")   # raises RegexError with Go's message
    rx.search("web-12")                 # True: a match anywhere, like regexp.MatchString
"""

from __future__ import annotations

from consulpy.filter.regex.machine import Machine
from consulpy.filter.regex.syntax import RegexError, parse_regex


class Regex:
    """A compiled pattern. Safe to share: searching only adds to a cache."""

    __slots__ = ("_machine", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._machine = Machine(parse_regex(pattern), pattern)

    def search(self, text: str) -> bool:
        return self._machine.search(text)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def compile_regex(pattern: str) -> Regex:
    return Regex(pattern)


__all__ = ["Regex", "RegexError", "compile_regex"]
