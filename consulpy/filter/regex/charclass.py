"""Character predicates for the RE2 engine: literals, `.`, bracket classes, Perl (`\\d`),
POSIX (`[:alpha:]`) and Unicode (`\\pL`) classes, each optionally case-insensitive.

Every predicate is a callable `(char) -> bool`; the automaton calls it once per distinct
(state, character) pair and caches the answer, so predicates can afford to be simple.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from functools import cache

CharPredicate = Callable[[str], bool]

# RE2's Perl classes are ASCII-only.
PERL_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}

POSIX_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}

# Unicode general categories by RE2's names; "C" is RE2's "other": controls, format, private
# use and surrogates, but not unassigned code points.
_CATEGORY_GROUPS = {
    "L": ("Lu", "Ll", "Lt", "Lm", "Lo"),
    "M": ("Mn", "Mc", "Me"),
    "N": ("Nd", "Nl", "No"),
    "P": ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"),
    "S": ("Sm", "Sc", "Sk", "So"),
    "Z": ("Zs", "Zl", "Zp"),
    "C": ("Cc", "Cf", "Co", "Cs"),
}
UNICODE_CATEGORIES: dict[str, frozenset[str]] = {
    name: frozenset(members) for name, members in _CATEGORY_GROUPS.items()
}
for _members in _CATEGORY_GROUPS.values():
    for _cat in _members:
        UNICODE_CATEGORIES[_cat] = frozenset({_cat})


def is_word_char(ch: str | None) -> bool:
    """RE2's `\\b` looks at ASCII word characters only."""
    return ch is not None and (ch.isascii() and (ch.isalnum() or ch == "_"))


def fold_key(ch: str) -> str:
    """One representative per set of characters that case-insensitive matching identifies."""
    upper = ch.upper()
    if len(upper) != 1:
        upper = ch
    lower = upper.lower()
    return lower if len(lower) == 1 else upper


def _reachable(key: str) -> set[str]:
    variants = {key}
    for other in (key.upper(), key.lower()):
        if len(other) == 1:
            variants.add(other)
    return variants


@cache
def _odd_variants() -> dict[str, tuple[str, ...]]:
    """Characters that fold to a key without being its upper or lower case (the Kelvin sign
    for k, long s for s, final sigma, ...): about 60, all in the Basic Multilingual Plane, so
    only that plane is scanned (once, on the first case-insensitive class)."""
    odd: dict[str, list[str]] = {}
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        key = fold_key(ch)
        if ch not in _reachable(key):
            odd.setdefault(key, []).append(ch)
    return {key: tuple(chars) for key, chars in odd.items()}


def case_variants(ch: str) -> set[str]:
    """`ch` and every character that matches it case-insensitively."""
    key = fold_key(ch)
    variants = _reachable(key)
    variants.add(ch)
    variants.update(_odd_variants().get(key, ()))
    return variants


class Literal:
    __slots__ = ("char", "key")

    def __init__(self, char: str, fold: bool) -> None:
        self.char = char
        self.key = fold_key(char) if fold else None

    def __call__(self, ch: str) -> bool:
        if self.key is None:
            return ch == self.char
        return ch == self.char or fold_key(ch) == self.key


class AnyChar:
    __slots__ = ("newline",)

    def __init__(self, newline: bool) -> None:
        self.newline = newline

    def __call__(self, ch: str) -> bool:
        return self.newline or ch != "\n"


class CharClass:
    """A union of code-point ranges and other predicates, possibly negated and folded."""

    __slots__ = ("fold", "his", "los", "negated", "predicates")

    def __init__(
        self,
        ranges: Iterable[tuple[int, int]],
        predicates: Iterable[CharPredicate] = (),
        negated: bool = False,
        fold: bool = False,
    ) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        self.los = [lo for lo, _ in merged]
        self.his = [hi for _, hi in merged]
        self.predicates = tuple(predicates)
        self.negated = negated
        self.fold = fold

    def _contains(self, ch: str) -> bool:
        code = ord(ch)
        i = bisect_right(self.los, code) - 1
        if i >= 0 and code <= self.his[i]:
            return True
        return any(p(ch) for p in self.predicates)

    def __call__(self, ch: str) -> bool:
        if self.fold:
            found = any(self._contains(v) for v in case_variants(ch))
        else:
            found = self._contains(ch)
        return found != self.negated


def unicode_class(name: str) -> CharPredicate | None:
    """Predicate for `\\p{name}` (general categories and Any), None for an unknown name."""
    if name == "Any":
        return lambda ch: True
    categories = UNICODE_CATEGORIES.get(name)
    if categories is None:
        return None
    return lambda ch: unicodedata.category(ch) in categories
