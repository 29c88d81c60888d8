"""Recursive-descent parser for go-bexpr expressions.

    expr     := and ("or" and)*
    and      := unary ("and" unary)*
    unary    := "not" unary | primary
    primary  := "(" expr ")" | match
    match    := selector ("==" | "!=" | ["not"] "contains" | ["not"] "matches") value
              | selector "is" ["not"] "empty"
              | value ["not"] "in" selector
    selector := ident ("." (ident | digits) | "[" string "]")*  |  "/json/pointer" (quoted)
    value    := string | number | selector (its dotted text)

Keywords are not reserved (go-bexpr's PEG grammar allows `not in Tags`, where `not` is the
value), so where two readings exist the parser tries them in the grammar's order and backtracks.
A failed parse reports the furthest place it reached and what it expected there, the way a PEG
parser does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

from consulpy.filter.errors import FilterError, syntax_error
from consulpy.filter.lexer import WHITESPACE, Kind, Token, tokenize
from consulpy.filter.nodes import And, Expr, Match, MatchOp, Not, Or, Selector, Value

# Parentheses plus `not`s: deeper nesting is refused (it would otherwise exhaust the stack).
MAX_DEPTH = 64

_POINTER_PUNCT = frozenset("-_.~:|")
_T = TypeVar("_T")


class _Backtrack(Exception):
    """This alternative does not match here; the furthest failure is recorded on the parser."""


def parse(source: str) -> Expr:
    """The tree of `source`; raises FilterError with a positioned message."""
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0
        self.fail_at = -1
        self.expected: list[str] = []

    # -- driver ------------------------------------------------------------------------------

    def parse(self) -> Expr:
        try:
            expr = self._or()
            if self._peek().kind is not Kind.EOF:
                self._fail('"and"', '"or"', "end of input")
        except _Backtrack:
            raise self._error() from None
        return expr

    def _error(self) -> FilterError:
        token = next(t for t in self.tokens if t.start >= self.fail_at)
        found = "end of input" if token.kind is Kind.EOF else repr(token.text)
        wanted = _join_alternatives(self.expected)
        detail = f"no match found at {found}, expected: {wanted}"
        index = self.tokens.index(token)
        if token.kind is Kind.INVALID and index and self.tokens[index - 1].end == token.start:
            detail += " (a value holding characters such as '-' must be quoted)"
        return syntax_error(self.source, self.fail_at, detail)

    def _fail(self, *expected: str) -> NoReturn:
        offset = self._peek().start
        if offset > self.fail_at:
            self.fail_at = offset
            self.expected = []
        if offset == self.fail_at:
            for item in expected:
                if item not in self.expected:
                    self.expected.append(item)
        raise _Backtrack

    # -- token helpers -----------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _at_word(self, word: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.kind is Kind.IDENT and token.text == word

    def _word(self, word: str) -> None:
        if not self._at_word(word):
            self._fail(f'"{word}"')
        self.pos += 1

    def _nest(self, at: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise syntax_error(
                self.source,
                at.start,
                f"expression nests too deeply (more than {MAX_DEPTH} levels of "
                "parentheses and not)",
            )

    # -- grammar -----------------------------------------------------------------------------

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._at_word("or"):
            self.pos += 1
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Expr:
        operands = [self._unary()]
        while self._at_word("and"):
            self.pos += 1
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self) -> Expr:
        if self._at_word("not"):
            start = self.pos
            self._nest(self._peek())
            try:
                self.pos += 1
                operand = self._unary()
                # `not not x` is x, as go-bexpr simplifies it
                return operand.operand if isinstance(operand, Not) else Not(operand)
            except _Backtrack:
                self.pos = start  # `not` may be a selector or value: `not in Tags`
            finally:
                self.depth -= 1
        return self._primary()

    def _primary(self) -> Expr:
        token = self._peek()
        if token.kind is Kind.LPAREN:
            self._nest(token)
            try:
                self.pos += 1
                expr = self._or()
                if self._peek().kind is not Kind.RPAREN:
                    self._fail('")"', '"and"', '"or"')
                self.pos += 1
                return expr
            finally:
                self.depth -= 1
        try:
            return self._match()
        except _Backtrack:
            if self.fail_at == token.start:
                self.expected += [e for e in ('"("', '"not"') if e not in self.expected]
            raise

    def _match(self) -> Expr:
        start = self.pos
        selector = self._try(self._selector)
        if selector is not None:
            op = self._try(self._selector_operator)
            if op is MatchOp.IS_EMPTY or op is MatchOp.IS_NOT_EMPTY:
                return Match(selector, op, None)
            if op is not None:
                return Match(selector, op, self._value())
        self.pos = start
        value = self._value()
        op = self._in_operator()
        return Match(self._selector(), op, value)

    def _try(self, rule: Callable[[], _T]) -> _T | None:
        start = self.pos
        try:
            return rule()
        except _Backtrack:
            self.pos = start
            return None

    def _selector_operator(self) -> MatchOp:
        token = self._peek()
        if token.kind is Kind.EQ:
            self.pos += 1
            return MatchOp.EQUAL
        if token.kind is Kind.NE:
            self.pos += 1
            return MatchOp.NOT_EQUAL
        if self._at_word("contains"):
            self.pos += 1
            return MatchOp.IN
        if self._at_word("matches"):
            self.pos += 1
            return MatchOp.MATCHES
        if self._at_word("is"):
            self.pos += 1
            if self._at_word("not"):
                self.pos += 1
                self._word("empty")
                return MatchOp.IS_NOT_EMPTY
            if not self._at_word("empty"):
                self._fail('"empty"', '"not"')
            self.pos += 1
            return MatchOp.IS_EMPTY
        if self._at_word("not"):
            self.pos += 1
            if self._at_word("contains"):
                self.pos += 1
                return MatchOp.NOT_IN
            if self._at_word("matches"):
                self.pos += 1
                return MatchOp.NOT_MATCHES
            self._fail('"contains"', '"matches"', '"in"')
        self._fail('"=="', '"!="', '"contains"', '"matches"', '"is"', '"not"', '"in"')

    def _in_operator(self) -> MatchOp:
        if self._at_word("in"):
            self.pos += 1
            return MatchOp.IN
        if self._at_word("not") and self._at_word("in", 1):
            self.pos += 2
            return MatchOp.NOT_IN
        if self._at_word("not"):
            self.pos += 1
            self._fail('"in"')
        self._fail('"in"', '"not"')

    def _selector(self) -> Selector:
        token = self._peek()
        if token.kind is Kind.STRING and token.quote == '"':
            path = _json_pointer(token)
            if path is not None:
                self.pos += 1
                return Selector(path, pointer=True)
        if token.kind is not Kind.IDENT:
            self._fail("selector")
        self.pos += 1
        path = [token.text]
        end = token.end
        while True:
            nxt = self._peek()
            if nxt.start != end:
                break
            if nxt.kind is Kind.DOT:
                key = self._peek(1)
                if key.start != nxt.end or not _is_key_token(key):
                    break
                self.pos += 2
                path.append(key.text)
                end = key.end
            elif nxt.kind is Kind.LBRACKET:
                self.pos += 1
                key = self._advance()
                if key.kind is not Kind.STRING:
                    raise syntax_error(self.source, key.start, "Invalid index")
                close = self._advance()
                if close.kind is not Kind.RBRACKET:
                    raise syntax_error(self.source, close.start, "Unclosed index expression")
                path.append(key.value)
                end = close.end
            else:
                break
        return Selector(tuple(path))

    def _value(self) -> Value:
        token = self._peek()
        if token.kind is Kind.STRING:
            self.pos += 1
            return Value(token.value, "string")
        if token.kind is Kind.NUMBER:
            after = self.source[token.end : token.end + 1]
            if after and after not in WHITESPACE and after != ")":
                raise syntax_error(self.source, token.start, "Invalid number literal")
            self.pos += 1
            return Value(token.text, "number")
        if token.kind is Kind.IDENT:
            return Value(".".join(self._selector().path), "identifier")
        self._fail("value")


def _is_key_token(token: Token) -> bool:
    return token.kind is Kind.IDENT or (token.kind is Kind.NUMBER and token.text.isdigit())


def _json_pointer(token: Token) -> tuple[str, ...] | None:
    """Segments of a `"/a/b"` selector, or None when the string is not one. As in go-bexpr,
    segments hold letters, digits and `-_.~:|`; `~1` and `~0` decode to `/` and `~`."""
    raw = token.text[1:-1]
    if not raw.startswith("/"):
        return None
    segments = raw[1:].split("/")
    for seg in segments:
        if not seg or not all(c.isalpha() or c.isnumeric() or c in _POINTER_PUNCT for c in seg):
            return None
    return tuple(seg.replace("~1", "/").replace("~0", "~") for seg in segments)


def _join_alternatives(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
