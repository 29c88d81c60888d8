"""The syntax tree of a filter expression, and its canonical text.

`and`/`or` nodes are n-ary (a chain `a and b and c` is one node) so that long chains need no
deep recursion. `render` prints a tree back as an expression that parses to the same tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from consulpy.util.goquote import go_quote


class MatchOp(Enum):
    """Match operators, named as go-bexpr names them in its error messages."""

    EQUAL = "Equal"
    NOT_EQUAL = "Not Equal"
    IN = "In"
    NOT_IN = "Not In"
    IS_EMPTY = "Is Empty"
    IS_NOT_EMPTY = "Is Not Empty"
    MATCHES = "Matches"
    NOT_MATCHES = "Not Matches"

    @property
    def negated(self) -> bool:
        return self in _NEGATED

    @property
    def positive(self) -> MatchOp:
        """The operator this one negates (itself when it is not a negation)."""
        return _POSITIVE.get(self, self)

    @property
    def takes_value(self) -> bool:
        return self not in (MatchOp.IS_EMPTY, MatchOp.IS_NOT_EMPTY)


_POSITIVE = {
    MatchOp.NOT_EQUAL: MatchOp.EQUAL,
    MatchOp.NOT_IN: MatchOp.IN,
    MatchOp.IS_NOT_EMPTY: MatchOp.IS_EMPTY,
    MatchOp.NOT_MATCHES: MatchOp.MATCHES,
}
_NEGATED = frozenset(_POSITIVE)


@dataclass(frozen=True, slots=True)
class Selector:
    """A path into the object. `pointer` marks the JSON-pointer form `"/a/b"`."""

    path: tuple[str, ...]
    pointer: bool = False

    def __str__(self) -> str:
        if self.pointer:
            return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in self.path)
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Value:
    """The operand as written: go-bexpr keeps values as raw text and converts them to the
    selected field's type only when the expression is compiled against a type."""

    raw: str
    kind: str = "string"  # "string", "number" or "identifier": how it was written


@dataclass(frozen=True, slots=True)
class Match:
    selector: Selector
    op: MatchOp
    value: Value | None


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Match | Not | And | Or

_OP_TEXT = {
    MatchOp.EQUAL: "==",
    MatchOp.NOT_EQUAL: "!=",
    MatchOp.IN: "in",
    MatchOp.NOT_IN: "not in",
    MatchOp.MATCHES: "matches",
    MatchOp.NOT_MATCHES: "not matches",
}


def render(expr: Expr) -> str:
    """Canonical text of a tree: selectors in bracket form where a key is not an identifier,
    values double-quoted, every compound operand parenthesised."""
    if isinstance(expr, Match):
        sel = _render_selector(expr.selector)
        if expr.op is MatchOp.IS_EMPTY:
            return f"{sel} is empty"
        if expr.op is MatchOp.IS_NOT_EMPTY:
            return f"{sel} is not empty"
        assert expr.value is not None
        value = go_quote(expr.value.raw)
        if expr.op in (MatchOp.IN, MatchOp.NOT_IN):
            return f"{value} {_OP_TEXT[expr.op]} {sel}"
        return f"{sel} {_OP_TEXT[expr.op]} {value}"
    if isinstance(expr, Not):
        return f"not {_render_operand(expr.operand)}"
    joiner = " and " if isinstance(expr, And) else " or "
    return joiner.join(_render_operand(op) for op in expr.operands)


def _render_operand(expr: Expr) -> str:
    return render(expr) if isinstance(expr, Match | Not) else f"({render(expr)})"


def _render_selector(sel: Selector) -> str:
    if sel.pointer:
        return go_quote(str(sel))
    head, *rest = sel.path
    parts = [head]
    for key in rest:
        parts.append(f".{key}" if _is_identifier(key) else f"[{go_quote(key)}]")
    return "".join(parts)


def _is_identifier(text: str) -> bool:
    return (
        text[:1].isascii()
        and text[:1].isalpha()
        and all(c.isascii() and (c.isalnum() or c == "_") for c in text)
    )
