"""Parser for RE2 regular expressions (the dialect of Go's `regexp`, which go-bexpr uses for
`matches`), producing a small tree for the automaton.

Only whether a pattern matches is ever asked, so captures, greediness and `(?U)` are parsed
and then forgotten. Constructs RE2 does not have (backreferences, lookaround, atomic groups,
possessive quantifiers, `\\Z`, ...) are rejected with Go's error texts, e.g.
`error parsing regexp: invalid or unsupported Perl syntax: `(?=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from consulpy.filter.regex.charclass import (
    PERL_CLASSES,
    POSIX_CLASSES,
    AnyChar,
    CharClass,
    CharPredicate,
    Literal,
    unicode_class,
)

MAX_REPEAT = 1000
MAX_NESTING = 100  # Go allows 1000; 100 keeps the recursive parser far from Python's limit

_FLAG_I, _FLAG_M, _FLAG_S, _FLAG_U = 1, 2, 4, 8
_FLAG_BITS = {"i": _FLAG_I, "m": _FLAG_M, "s": _FLAG_S, "U": _FLAG_U}
_SIMPLE_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


class RegexError(ValueError):
    """A pattern Go's regexp would refuse; str() is Go's message."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


class AssertKind(Enum):
    BEGIN_TEXT = "\\A"
    END_TEXT = "\\z"
    BEGIN_LINE = "(?m)^"
    END_LINE = "(?m)$"
    WORD_BOUNDARY = "\\b"
    NOT_WORD_BOUNDARY = "\\B"


@dataclass(frozen=True, slots=True)
class Char:
    test: CharPredicate


@dataclass(frozen=True, slots=True)
class Assert:
    kind: AssertKind


@dataclass(frozen=True, slots=True)
class Concat:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alternate:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Repeat:
    item: Node
    min: int
    max: int | None  # None: unbounded


Node = Char | Assert | Concat | Alternate | Repeat

EMPTY = Concat(())


def parse_regex(pattern: str) -> Node:
    return _Parser(pattern).parse()


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.flags = 0
        self.depth = 0
        self.names: set[str] = set()

    # -- helpers -----------------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.src[i] if i < len(self.src) else ""

    def _rest(self) -> str:
        return self.src[self.pos :]

    @property
    def _fold(self) -> bool:
        return bool(self.flags & _FLAG_I)

    # -- structure ---------------------------------------------------------------------------

    def parse(self) -> Node:
        node = self._alternation()
        if self.pos < len(self.src):  # only a stray ")" stops the top level early
            raise RegexError("unexpected )", self.src)
        _check_repeat_sizes(node, 1, self.src)
        return node

    def _alternation(self) -> Node:
        branches = [self._concat()]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._concat())
        return branches[0] if len(branches) == 1 else Alternate(tuple(branches))

    def _concat(self) -> Node:
        items: list[Node] = []
        while True:
            c = self._peek()
            if c in ("", "|", ")"):
                break
            if c in "*+?" or (c == "{" and self._repeat_braces() is not None):
                raise RegexError("missing argument to repetition operator", self._op_text())
            atom = self._atom()
            if atom is None:  # a flag group such as (?i): nothing to repeat
                continue
            atom = self._quantified(atom)
            items.append(atom)
        return items[0] if len(items) == 1 else Concat(tuple(items))

    def _quantified(self, atom: Node) -> Node:
        start = self.pos
        c = self._peek()
        if c == "*":
            lo, hi, self.pos = 0, None, self.pos + 1
        elif c == "+":
            lo, hi, self.pos = 1, None, self.pos + 1
        elif c == "?":
            lo, hi, self.pos = 0, 1, self.pos + 1
        elif c == "{" and (braces := self._repeat_braces()) is not None:
            lo, hi, end = braces
            if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
                raise RegexError("invalid repeat count", self.src[self.pos : end])
            self.pos = end
        else:
            return atom
        if self._peek() == "?":  # non-greedy: irrelevant to whether a match exists
            self.pos += 1
        nxt = self._peek()
        if nxt in ("*", "+", "?") or (nxt == "{" and self._repeat_braces() is not None):
            end = self._repeat_braces()[2] if nxt == "{" else self.pos + 1  # type: ignore[index]
            raise RegexError("invalid nested repetition operator", self.src[start:end])
        return Repeat(atom, lo, hi)

    def _repeat_braces(self) -> tuple[int, int | None, int] | None:
        """`{n}`, `{n,}` or `{n,m}` at pos as (n, m, end); None when the brace is a literal."""
        src, i = self.src, self.pos + 1
        j = i
        while j < len(src) and src[j].isdigit() and src[j].isascii():
            j += 1
        if j == i:
            return None
        lo = int(src[i:j])
        if j < len(src) and src[j] == "}":
            return lo, lo, j + 1
        if j >= len(src) or src[j] != ",":
            return None
        k = j + 1
        while k < len(src) and src[k].isdigit() and src[k].isascii():
            k += 1
        if k >= len(src) or src[k] != "}":
            return None
        return lo, (int(src[j + 1 : k]) if k > j + 1 else None), k + 1

    def _op_text(self) -> str:
        c = self._peek()
        if c == "{":
            braces = self._repeat_braces()
            assert braces is not None
            return self.src[self.pos : braces[2]]
        return c

    def _atom(self) -> Node | None:
        c = self._peek()
        if c == "(":
            return self._group()
        if c == "[":
            return self._class()
        self.pos += 1
        if c == ".":
            return Char(AnyChar(bool(self.flags & _FLAG_S)))
        if c == "^":
            return Assert(AssertKind.BEGIN_LINE if self.flags & _FLAG_M else AssertKind.BEGIN_TEXT)
        if c == "$":
            return Assert(AssertKind.END_LINE if self.flags & _FLAG_M else AssertKind.END_TEXT)
        if c == "\\":
            self.pos -= 1
            return self._escape_atom()
        return Char(Literal(c, self._fold))

    def _group(self) -> Node | None:
        start = self.pos
        rest = self._rest()
        saved_flags = self.flags
        if rest.startswith(("(?<=", "(?<!")):
            raise RegexError("invalid or unsupported Perl syntax", rest[:4])
        if rest.startswith(("(?P<", "(?<")):
            open_len = 4 if rest.startswith("(?P<") else 3
            close = rest.find(">")
            if close < 0:
                raise RegexError("invalid named capture", rest)
            name = rest[open_len:close]
            if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
                raise RegexError("invalid named capture", rest[: close + 1])
            if name in self.names:
                raise RegexError("duplicate capture group name", name)
            self.names.add(name)
            self.pos += close + 1
        elif rest.startswith("(?"):
            scoped = self._flags(start)
            if not scoped:
                return None  # (?flags) sets flags until the end of the enclosing group
        else:
            self.pos += 1
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RegexError("expression nests too deeply", self.src)
        body = self._alternation()
        self.depth -= 1
        if self._peek() != ")":
            raise RegexError("missing closing )", self.src)
        self.pos += 1
        self.flags = saved_flags
        return body

    def _flags(self, start: int) -> bool:
        """Parse `(?flags)` or `(?flags:` at start; return True for the scoped `:` form."""
        i = start + 2
        flags = self.flags
        negate = False
        seen_any = False
        while i < len(self.src):
            c = self.src[i]
            if c in _FLAG_BITS:
                flags = flags & ~_FLAG_BITS[c] if negate else flags | _FLAG_BITS[c]
                seen_any = True
            elif c == "-" and not negate:
                negate = True
                seen_any = False
            elif c in ":)" and (seen_any or not negate):
                self.flags = flags
                self.pos = i + 1
                return c == ":"
            else:
                break
            i += 1
        raise RegexError("invalid or unsupported Perl syntax", self.src[start : i + 1])

    # -- escapes -----------------------------------------------------------------------------

    def _escape_atom(self) -> Node:
        """An escape outside brackets: assertions, classes, \\Q...\\E or one literal."""
        start = self.pos
        c = self._peek(1)
        fold = self._fold
        if c == "":
            raise RegexError("trailing backslash at end of expression", "")
        simple_assert = {
            "A": AssertKind.BEGIN_TEXT,
            "z": AssertKind.END_TEXT,
            "b": AssertKind.WORD_BOUNDARY,
            "B": AssertKind.NOT_WORD_BOUNDARY,
        }
        if c in simple_assert:
            self.pos += 2
            return Assert(simple_assert[c])
        if c.lower() in PERL_CLASSES:
            self.pos += 2
            return Char(CharClass(PERL_CLASSES[c.lower()], negated=c.isupper(), fold=fold))
        if c in "pP":
            return Char(self._unicode_class(fold))
        if c == "Q":
            end = self.src.find("\\E", start + 2)
            text = self.src[start + 2 :] if end < 0 else self.src[start + 2 : end]
            self.pos = len(self.src) if end < 0 else end + 2
            return Concat(tuple(Char(Literal(ch, fold)) for ch in text))
        return Char(Literal(self._escape_char(), fold))

    def _escape_char(self) -> str:
        """The character of a literal escape at pos (a backslash); advances past it."""
        start = self.pos
        c = self._peek(1)
        if c == "":
            raise RegexError("trailing backslash at end of expression", "")
        self.pos += 2
        if (c in "1234567" and not _is_octal(self._peek())) or c in "89":
            # a lone \1..\9 would be a backreference, which RE2 does not have
            raise RegexError("invalid escape sequence", self.src[start : self.pos])
        if c in _OCTAL:
            digits = c
            while len(digits) < 3 and _is_octal(self._peek()):
                digits += self._peek()
                self.pos += 1
            return chr(int(digits, 8))
        if c == "x":
            if self._peek() == "{":
                end = self.src.find("}", self.pos)
                digits = self.src[self.pos + 1 : end] if end > 0 else ""
                if (
                    end < 0
                    or not digits
                    or not all(d in _HEX for d in digits)
                    or int(digits, 16) > 0x10FFFF
                ):
                    stop = len(self.src) if end < 0 else end + 1
                    raise RegexError("invalid escape sequence", self.src[start:stop])
                self.pos = end + 1
                return chr(int(digits, 16))
            digits = self.src[self.pos : self.pos + 2]
            if len(digits) != 2 or not all(d in _HEX for d in digits):
                raise RegexError("invalid escape sequence", self.src[start : self.pos + 2])
            self.pos += 2
            return chr(int(digits, 16))
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if c.isascii() and not c.isalnum():
            return c  # escaped punctuation stands for itself
        raise RegexError("invalid escape sequence", self.src[start : self.pos])

    def _unicode_class(self, fold: bool) -> CharPredicate:
        """`\\pN`, `\\p{Name}`, `\\PN`, `\\p{^Name}` at pos."""
        start = self.pos
        negated = self._peek(1) == "P"
        if self._peek(2) == "{":
            end = self.src.find("}", self.pos + 3)
            if end < 0:
                raise RegexError("invalid character class range", self._rest())
            name = self.src[self.pos + 3 : end]
            self.pos = end + 1
        else:
            name = self._peek(2)
            if not name:
                raise RegexError("invalid character class range", self._rest())
            self.pos += 3
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        pred = unicode_class(name)
        if pred is None:
            raise RegexError(
                "unsupported Unicode class (consulpy knows general categories and Any)",
                self.src[start : self.pos],
            )
        return CharClass((), (pred,), negated=negated, fold=fold)

    # -- bracket classes ---------------------------------------------------------------------

    def _class(self) -> Node:
        start = self.pos
        self.pos += 1
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        preds: list[CharPredicate] = []
        first = True
        while True:
            c = self._peek()
            if c == "":
                raise RegexError("missing closing ]", self.src[start:])
            if c == "]" and not first:
                self.pos += 1
                break
            first = False
            if self._rest().startswith("[:") and (close := self.src.find(":]", self.pos + 2)) > 0:
                name = self.src[self.pos + 2 : close]
                neg = name.startswith("^")
                table = POSIX_CLASSES.get(name[1:] if neg else name)
                if table is None:
                    raise RegexError(
                        "invalid character class range", self.src[self.pos : close + 2]
                    )
                self.pos = close + 2
                if neg:
                    preds.append(CharClass(table, negated=True))
                else:
                    ranges.extend(table)
                continue
            if c == "\\" and self._peek(1).lower() in PERL_CLASSES:
                letter = self._peek(1)
                self.pos += 2
                if letter.isupper():
                    preds.append(CharClass(PERL_CLASSES[letter.lower()], negated=True))
                else:
                    ranges.extend(PERL_CLASSES[letter])
                continue
            if c == "\\" and self._peek(1) in ("p", "P"):
                preds.append(self._unicode_class(fold=False))
                continue
            range_start = self.pos
            lo = self._class_char()
            hi = lo
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.pos += 1
                hi = self._class_char()
                if ord(hi) < ord(lo):
                    raise RegexError(
                        "invalid character class range", self.src[range_start : self.pos]
                    )
            ranges.append((ord(lo), ord(hi)))
        return Char(CharClass(ranges, preds, negated=negated, fold=self._fold))

    def _class_char(self) -> str:
        if self._peek() == "\\":
            return self._escape_char()
        c = self._peek()
        self.pos += 1
        return c


def _is_octal(ch: str) -> bool:
    return ch != "" and ch in _OCTAL


def _check_repeat_sizes(node: Node, outer: int, src: str) -> None:
    """Go refuses repetitions whose nested counts multiply beyond 1000 (`(a{500}){3}`)."""
    if isinstance(node, Repeat):
        count = node.max if node.max is not None else node.min
        if count > 1:
            outer *= count
            if outer > MAX_REPEAT:
                raise RegexError("invalid repeat count", src)
        _check_repeat_sizes(node.item, outer, src)
    elif isinstance(node, Concat | Alternate):
        for item in node.items:
            _check_repeat_sizes(item, outer, src)
