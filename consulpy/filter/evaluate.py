"""Compiling a syntax tree into a predicate over JSON-shaped objects, and running it.

Semantics, following go-bexpr (v0.1.x, the line Consul builds with):

* a selector walks struct fields and map keys; a list met on the way is looked through and the
  match holds when it holds for ANY element (`Checks.Status == critical`: some check is
  critical; `Checks.Status != passing`: some check is not passing). An empty list matches
  nothing, whatever the operator;
* a map key that is absent makes `==`, `in`, `is not empty` and `matches` false and their
  negations true, without looking further;
* with a schema, a struct field that the JSON left out (or set to null) holds its Go zero
  value: `""`, 0, false, an empty map or list;
* values are text converted to the field's type: `ServicePort == 8080`, `EnableTagOverride ==
  true`; with a schema the conversion happens (and fails) at compile time, without one it
  happens against the value found, and a value that cannot be converted makes the match false
  (negated operators included, as a go-bexpr evaluation error would give no match).
"""

from __future__ import annotations

from collections.abc import Callable

from consulpy.filter.coerce import CoerceError, coerce
from consulpy.filter.errors import FilterError
from consulpy.filter.nodes import And, Expr, Match, MatchOp, Not, Or, Selector
from consulpy.filter.regex import Regex, RegexError, compile_regex
from consulpy.filter.schema import (
    ListOf,
    MapOf,
    SchemaType,
    Step,
    StepKind,
    resolve,
    supported_ops,
    zero_value,
)
from consulpy.util.goquote import go_quote

Predicate = Callable[[object], bool]

# The answer for a map key that is not there: nothing equals, contains or matches it, and
# it counts as empty.
_ABSENT = {
    MatchOp.EQUAL: False,
    MatchOp.NOT_EQUAL: True,
    MatchOp.IN: False,
    MatchOp.NOT_IN: True,
    MatchOp.IS_EMPTY: True,
    MatchOp.IS_NOT_EMPTY: False,
    MatchOp.MATCHES: False,
    MatchOp.NOT_MATCHES: True,
}


def compile_expr(expr: Expr, schema: SchemaType | None) -> Predicate:
    if isinstance(expr, Match):
        if schema is None:
            return _UntypedMatch(expr)
        return _TypedMatch(expr, schema)
    if isinstance(expr, Not):
        inner = compile_expr(expr.operand, schema)
        return lambda obj: not inner(obj)
    parts = tuple(compile_expr(op, schema) for op in expr.operands)
    if isinstance(expr, And):
        return lambda obj: all(p(obj) for p in parts)
    assert isinstance(expr, Or)
    return lambda obj: any(p(obj) for p in parts)


def _compile_pattern(raw: str) -> Regex:
    try:
        return compile_regex(raw)
    except RegexError as exc:
        raise FilterError(f"Failed to compile regular expression {go_quote(raw)}: {exc}") from None


class _TypedMatch:
    """A match whose selector was checked against a schema and whose value was converted."""

    __slots__ = ("final", "op", "operand", "steps", "target")

    def __init__(self, match: Match, schema: SchemaType) -> None:
        sel = match.selector
        resolved = resolve(schema, sel)
        self.steps: tuple[Step, ...] = resolved.steps
        self.target = resolved.target
        self.op = match.op
        if match.op not in supported_ops(self.target):
            raise FilterError(
                f"Invalid match operator {go_quote(match.op.value)} "
                f"for selector {go_quote(str(sel))}"
            )
        self.operand = self._operand(match, sel)
        self.final = self._final()

    def _operand(self, match: Match, sel: Selector) -> object:
        if match.value is None:
            return None
        raw = match.value.raw
        if match.op.positive is MatchOp.MATCHES:
            return _compile_pattern(raw)
        target = self.target
        if isinstance(target, MapOf):
            target = str  # `in` on a map looks for a key
        elif isinstance(target, ListOf):
            target = target.item
        try:
            return coerce(raw, target)  # type: ignore[arg-type]
        except CoerceError as exc:
            raise FilterError(
                f"Failed to coerce value {go_quote(raw)} for selector {go_quote(str(sel))}: {exc}"
            ) from None

    def _final(self) -> Callable[[object], bool | None]:
        """The positive operator's test on the selected value; None when the value does not
        have the schema's type (data that does not fit the schema matches nothing)."""
        positive = self.op.positive
        target = self.target
        operand = self.operand
        if positive is MatchOp.EQUAL:
            return lambda v: _same_scalar(v, operand, target)  # type: ignore[arg-type]
        if positive is MatchOp.MATCHES:
            regex: Regex = operand  # type: ignore[assignment]
            return lambda v: regex.search(v) if isinstance(v, str) else None
        if positive is MatchOp.IS_EMPTY:
            return lambda v: len(v) == 0 if isinstance(v, str | list | dict) else None
        if target is str:
            return lambda v: operand in v if isinstance(v, str) else None  # type: ignore[operator]
        if isinstance(target, MapOf):
            return lambda v: operand in v if isinstance(v, dict) else None
        item = target.item  # type: ignore[union-attr]
        return lambda v: (
            any(_same_scalar(x, operand, item) is True for x in v) if isinstance(v, list) else None
        )

    def __call__(self, obj: object) -> bool:
        return self._walk(obj, 0)

    def _walk(self, value: object, index: int) -> bool:
        steps = self.steps
        while index < len(steps):
            step = steps[index]
            index += 1
            if step.kind is StepKind.EACH:
                if not isinstance(value, list):
                    return False
                return any(
                    self._walk(zero_value(step.schema) if item is None else item, index)
                    for item in value
                )
            if value is None:
                value = {}
            if not isinstance(value, dict):
                return False
            if step.kind is StepKind.KEY and step.name not in value:
                return _ABSENT[self.op]
            value = value.get(step.name)
            if value is None:
                value = zero_value(step.schema)
        result = self.final(value)
        if result is None:
            return False
        return result != self.op.negated


class _UntypedMatch:
    """A match evaluated without a schema: types come from the values found."""

    __slots__ = ("op", "path", "raw", "regex")

    def __init__(self, match: Match) -> None:
        self.op = match.op
        self.path = match.selector.path
        self.raw = match.value.raw if match.value is not None else ""
        self.regex = _compile_pattern(self.raw) if match.op.positive is MatchOp.MATCHES else None

    def __call__(self, obj: object) -> bool:
        return self._walk(obj, 0)

    def _walk(self, value: object, index: int) -> bool:
        path = self.path
        while index < len(path):
            if isinstance(value, list):
                return any(self._walk(item, index) for item in value)
            if not isinstance(value, dict):
                return _ABSENT[self.op] if value is None else False
            name = path[index]
            if name not in value:
                return _ABSENT[self.op]
            value = value[name]
            index += 1
        if value is None:
            return _ABSENT[self.op]
        result = self._test(value)
        if result is None:
            return False  # the value cannot be compared this way: no match
        return result != self.op.negated

    def _test(self, value: object) -> bool | None:
        """The positive operator's answer, or None when it does not apply to this value."""
        positive = self.op.positive
        if positive is MatchOp.IS_EMPTY:
            return len(value) == 0 if isinstance(value, str | list | dict) else None
        if positive is MatchOp.MATCHES:
            return self.regex.search(value) if isinstance(value, str) else None  # type: ignore[union-attr]
        if positive is MatchOp.IN:
            if isinstance(value, str):
                return self.raw in value
            if isinstance(value, dict):
                return self.raw in value
            if isinstance(value, list):
                return any(_loose_equal(item, self.raw) for item in value)
            return None
        if isinstance(value, list | dict):
            return None
        return _loose_equal(value, self.raw)


def _scalar_type(value: object) -> type | None:
    for kind in (bool, int, float, str):  # bool first: it is an int in Python
        if isinstance(value, kind):
            return kind
    return None


def _loose_equal(value: object, raw: str) -> bool | None:
    """`value == raw` after converting raw to the type of value (None: cannot convert)."""
    kind = _scalar_type(value)
    if kind is None:
        return None
    try:
        return value == coerce(raw, kind)
    except CoerceError:
        return None


def _same_scalar(value: object, operand: object, kind: type) -> bool | None:
    if _scalar_type(value) is not kind and not (kind is float and _scalar_type(value) is int):
        return None
    return value == operand
