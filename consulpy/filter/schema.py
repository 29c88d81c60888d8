"""A small language describing the shape of filtered objects, standing in for the Go struct
that go-bexpr reflects on.

A schema is one of:

* `str`, `int`, `float`, `bool`: a scalar field;
* `MapOf(t)`: a JSON object with arbitrary keys whose values have schema `t`;
* `ListOf(t)`: a JSON array of `t`;
* a mapping `{"Field": schema, ...}`: a struct with exactly these (case-sensitive) fields.

Knowing the shape lets `compile_filter` do what go-bexpr does when Consul creates a filter:
reject unknown selectors (`Selector "Service.Foo" is not valid`), reject operators the field's
type does not support, and convert values to the field's type once, up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from consulpy.filter.errors import FilterError
from consulpy.filter.nodes import MatchOp, Selector
from consulpy.util.goquote import go_quote

SCALARS: tuple[type, ...] = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class MapOf:
    """A JSON object with arbitrary string keys, each value described by `value`."""

    value: SchemaType


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array whose elements are described by `item`."""

    item: SchemaType


SchemaType = type | MapOf | ListOf | Mapping[str, "SchemaType"]


def struct(**fields: SchemaType) -> Mapping[str, SchemaType]:
    """An immutable struct schema (a plain dict works too)."""
    return MappingProxyType(dict(fields))


def check_schema(schema: SchemaType, where: str = "schema") -> None:
    """Raise TypeError when `schema` is not built from the forms above (a programming error)."""
    if isinstance(schema, type):
        if schema not in SCALARS:
            raise TypeError(f"{where}: unsupported scalar type {schema.__name__}")
    elif isinstance(schema, MapOf):
        check_schema(schema.value, f"{where}.<any>")
    elif isinstance(schema, ListOf):
        check_schema(schema.item, where)
    elif isinstance(schema, Mapping):
        for name, sub in schema.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"{where}: field names must be non-empty strings")
            check_schema(sub, f"{where}.{name}")
    else:
        raise TypeError(f"{where}: {schema!r} is not a schema")


class StepKind(Enum):
    FIELD = "field"  # a struct field: absent or null means the field's zero value
    KEY = "key"  # a map key: an absent key is "not found"
    EACH = "each"  # a list on the way: the match holds when it holds for any element


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    name: str
    schema: SchemaType  # the schema of what this step arrives at


@dataclass(frozen=True, slots=True)
class ResolvedSelector:
    steps: tuple[Step, ...]
    target: SchemaType


def resolve(schema: SchemaType, selector: Selector) -> ResolvedSelector:
    """The walk that `selector` describes through `schema`, or FilterError when go-bexpr would
    call the selector invalid. Lists are looked through: `Checks.Status` selects the `Status`
    of every element of the `Checks` list."""
    steps: list[Step] = []
    current = schema
    for index, name in enumerate(selector.path):
        while isinstance(current, ListOf):
            current = current.item
            steps.append(Step(StepKind.EACH, "", current))
        if isinstance(current, MapOf):
            current = current.value
            steps.append(Step(StepKind.KEY, name, current))
        elif isinstance(current, Mapping) and name in current:
            current = current[name]
            steps.append(Step(StepKind.FIELD, name, current))
        else:
            invalid = Selector(selector.path[: index + 1], selector.pointer)
            raise FilterError(f"Selector {go_quote(str(invalid))} is not valid")
    return ResolvedSelector(tuple(steps), current)


_STRING_OPS = frozenset(MatchOp)  # is empty on strings: a consulpy extension (see docs)
_SCALAR_OPS = frozenset({MatchOp.EQUAL, MatchOp.NOT_EQUAL})
_CONTAINER_OPS = frozenset({MatchOp.IN, MatchOp.NOT_IN, MatchOp.IS_EMPTY, MatchOp.IS_NOT_EMPTY})
_EMPTINESS_OPS = frozenset({MatchOp.IS_EMPTY, MatchOp.IS_NOT_EMPTY})


def supported_ops(target: SchemaType) -> frozenset[MatchOp]:
    """The operators go-bexpr allows on a field of this schema."""
    if target is str:
        return _STRING_OPS
    if isinstance(target, type):
        return _SCALAR_OPS
    if isinstance(target, MapOf):
        return _CONTAINER_OPS
    if isinstance(target, ListOf):
        return _CONTAINER_OPS if target.item in SCALARS else _EMPTINESS_OPS
    return frozenset()  # a struct itself cannot be compared


def zero_value(schema: SchemaType) -> object:
    """What Go holds in a field the JSON left out (Consul omits empty fields)."""
    if isinstance(schema, type):
        return schema()
    if isinstance(schema, ListOf):
        return []
    return {}
