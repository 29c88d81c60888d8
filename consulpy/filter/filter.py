"""`compile_filter` and the `Filter` it returns: the one entry point the HTTP layer uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from consulpy.filter.evaluate import Predicate, compile_expr
from consulpy.filter.nodes import Expr, render
from consulpy.filter.parser import parse
from consulpy.filter.schema import SchemaType, check_schema

_K = TypeVar("_K")
_V = TypeVar("_V")


class Filter:
    """A compiled `?filter=` expression. Evaluation never raises: a value of an unexpected
    type simply does not match. Immutable and safe to share between requests."""

    __slots__ = ("_predicate", "expr", "expression", "schema")

    def __init__(
        self,
        expression: str,
        expr: Expr | None,
        schema: SchemaType | None,
        predicate: Predicate | None,
    ) -> None:
        self.expression = expression
        self.expr = expr  # None for the empty expression, which keeps everything
        self.schema = schema
        self._predicate = predicate

    def matches(self, obj: object) -> bool:
        return True if self._predicate is None else self._predicate(obj)

    def apply(self, items: Iterable[_V]) -> list[_V]:
        """The elements that match, in their order."""
        if self._predicate is None:
            return list(items)
        return [item for item in items if self._predicate(item)]

    def apply_map(self, mapping: Mapping[_K, _V]) -> dict[_K, _V]:
        """The entries whose value matches (agent/services, agent/checks, catalog/node)."""
        if self._predicate is None:
            return dict(mapping)
        return {key: value for key, value in mapping.items() if self._predicate(value)}

    def __repr__(self) -> str:
        text = "<everything>" if self.expr is None else render(self.expr)
        return f"Filter({text!r})"


def compile_filter(expression: str, schema: SchemaType | None = None) -> Filter:
    """Parse `expression` and check it against `schema` (one of consulpy.filter.schemas, or
    None to take types from the data). Raises FilterError with go-bexpr-like detail.

    As in Consul, an empty expression filters nothing out."""
    if schema is not None:
        check_schema(schema)
    if expression == "":
        return Filter(expression, None, schema, None)
    expr = parse(expression)
    return Filter(expression, expr, schema, compile_expr(expr, schema))
