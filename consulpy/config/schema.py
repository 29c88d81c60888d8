"""The little type system that checks one config source against the known keys.

Each setting has a `Spec` that turns the parsed value into its Python type (durations become
float seconds), reports a clear error naming the key path when it cannot, and says how two
sources combine (`merge`): structs recursively, maps key-wise, lists by concatenation, scalars by
replacement, as Consul's config merge does. Key lookup ignores case, like Consul's decoder.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from consulpy.config.durations import parse_duration
from consulpy.config.hcl import BlockList

Check = Callable[[Any], Any]
"""Validates (and may normalise) an already-typed value; raises ValueError with the reason."""


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
"""Returned by `Spec.coerce` after it recorded an error; the key is then left out."""


class Ctx:
    """Collects the errors found in one source, each prefixed with where it came from."""

    def __init__(self, label: str, *, lenient_durations: bool = False) -> None:
        self.label = label
        self.lenient_durations = lenient_durations
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(
            f"{self.label}: {path}: {message}" if path else f"{self.label}: {message}"
        )

    def unknown(self, path: str) -> None:
        self.errors.append(f"{self.label}: invalid config key {path}")


def got(value: Any) -> str:
    """How a wrong value is shown in an error: JSON for scalars, the shape for the rest."""
    if isinstance(value, BlockList):
        return "a block"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, list):
        return "a list"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Spec(ABC):
    """How one setting is typed and merged."""

    merge: ClassVar[str] = "replace"  # replace | concat | overlay | struct

    @abstractmethod
    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        """The typed value, or INVALID after recording an error in `ctx`."""


class Scalar(Spec):
    """A single typed value, optionally checked by `check` after conversion."""

    what: ClassVar[str] = "a value"

    def __init__(self, check: Check | None = None) -> None:
        self.check = check

    def convert(self, value: Any, ctx: Ctx) -> Any:
        return value

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        try:
            result = self.convert(value, ctx)
            if self.check is not None:
                result = self.check(result)
        except ValueError as exc:
            ctx.error(path, str(exc))
            return INVALID
        return result


class Str(Scalar):
    def convert(self, value: Any, ctx: Ctx) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {got(value)}")
        return value


class Int(Scalar):
    def convert(self, value: Any, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected an integer, got {got(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected an integer, got {got(value)}")
            return int(value)
        return value


class Float(Scalar):
    def convert(self, value: Any, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {got(value)}")
        return float(value)


class Bool(Scalar):
    def convert(self, value: Any, ctx: Ctx) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean (true or false), got {got(value)}")
        return value


class Duration(Scalar):
    """A Go duration string, stored as float seconds. Dict sources may also give seconds."""

    def convert(self, value: Any, ctx: Ctx) -> Any:
        if ctx.lenient_durations and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, str):
            raise ValueError(f'expected a duration string like "10s", got {got(value)}')
        return parse_duration(value)


class ListOf(Spec):
    merge = "concat"

    def __init__(self, item: Spec) -> None:
        self.item = item

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {got(value)}")
            return INVALID
        out = []
        for i, item in enumerate(value):
            if item is None:
                continue
            result = self.item.coerce(item, f"{path}[{i}]", ctx)
            if result is not INVALID:
                out.append(result)
        return out


def merge_blocks(blocks: list[Any]) -> dict[str, Any]:
    """Several bodies of a block that is one map: later keys win, nested block lists add up."""
    out: dict[str, Any] = {}
    for body in blocks:
        for key, value in body.items():
            before = out.get(key)
            if isinstance(before, BlockList) and isinstance(value, BlockList):
                out[key] = BlockList([*before, *value])
            else:
                out[key] = value
    return out


def as_mapping(value: Any) -> dict[str, Any] | None:
    """A map, or the bodies of blocks/one-map lists read as one map (Consul's weak decode)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return merge_blocks(value)
    return None


class MapOf(Spec):
    """A map with free-form keys (node_meta, tagged_addresses, ...)."""

    merge = "overlay"

    def __init__(self, value: Spec) -> None:
        self.value = value

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        mapping = as_mapping(value)
        if mapping is None:
            ctx.error(path, f"expected a map, got {got(value)}")
            return INVALID
        out = {}
        for key, item in mapping.items():
            if item is None:
                continue
            result = self.value.coerce(item, join(path, str(key)), ctx)
            if result is not INVALID:
                out[str(key)] = result
        return out


class Struct(Spec):
    """A map with a fixed set of keys; an unknown key is an error naming it."""

    merge = "struct"

    def __init__(self, fields: Mapping[str, Spec]) -> None:
        self.fields = dict(fields)
        self._by_lower = {name.lower(): name for name in self.fields}

    def lookup(self, key: str) -> str | None:
        return self._by_lower.get(key.lower())

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        mapping = as_mapping(value)
        if mapping is None:
            ctx.error(path, f"expected a map, got {got(value)}")
            return INVALID
        out: dict[str, Any] = {}
        for key, item in mapping.items():
            name = self.lookup(str(key))
            if name is None:
                ctx.unknown(join(path, str(key)))
                continue
            if item is None:
                continue
            result = self.fields[name].coerce(item, join(path, str(key)), ctx)
            if result is not INVALID:
                out[name] = result
        return out


def _opaque(value: Any) -> Any:
    """Free-form data with HCL block lists folded: one block -> a map, several -> a list."""
    if isinstance(value, BlockList):
        return _opaque(value[0]) if len(value) == 1 else [_opaque(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _opaque(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_opaque(v) for v in value]
    return value


class OpaqueMap(Spec):
    """A free-form map Consul passes through (connect.ca_config, proxy config, ...)."""

    merge = "overlay"

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        mapping = as_mapping(value)
        if mapping is None:
            ctx.error(path, f"expected a map, got {got(value)}")
            return INVALID
        return _opaque(mapping)


class OpaqueList(Spec):
    """A free-form list of maps (watches, config_entries.bootstrap, segments)."""

    merge = "concat"

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {got(value)}")
            return INVALID
        return [_opaque(v) for v in value]


class OneOrMany(Spec):
    """`service { }` / `check { }`: one definition, or several blocks; always a list."""

    merge = "concat"

    def __init__(self, item: Spec) -> None:
        self.item = item

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            result = self.item.coerce(item, f"{path}[{i}]" if len(items) > 1 else path, ctx)
            if result is not INVALID:
                out.append(result)
        return out


def choice(*allowed: str, lower: bool = False) -> Check:
    """A check that the string is one of `allowed`."""

    def check(value: str) -> str:
        candidate = value.lower() if lower else value
        if candidate not in allowed:
            options = ", ".join(repr(a) for a in allowed)
            raise ValueError(f"must be one of {options}, got {got(value)}")
        return candidate

    return check


def at_least(minimum: float) -> Check:
    def check(value: float) -> float:
        if value < minimum:
            raise ValueError(f"must be >= {minimum:g}, got {value:g}")
        return value

    return check
