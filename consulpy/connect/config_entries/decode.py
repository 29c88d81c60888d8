"""The decoder: a schema per kind, mapstructure-like key matching and weak typing.

Consul decodes an entry with mapstructure, so keys match their field names case-insensitively
or through a snake_case alias (`path_prefix`), scalars are converted weakly ("5" for 5, a
single value for a one-element list), and every key that lands nowhere is refused as
`invalid config key "X"`."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consulpy.connect.config_entries.kinds import (
    EntryError,
    _go_kind,
    _snake,
    multierror,
)
from consulpy.util.durations import DurationError, duration_from_json, format_duration_ns
from consulpy.util.goquote import go_quote


class _Ctx:
    """Collects what one decode found: unknown keys (strict mode) and type errors."""

    __slots__ = ("errors", "strict", "unused")

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.unused: list[str] = []
        self.errors: list[str] = []


class _Type(ABC):
    """One field type: `decode` turns JSON input into our value, `emit` into canonical JSON."""

    @abstractmethod
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        """Our value for a JSON input; problems go to ctx.errors."""

    def emit(self, value: Any) -> Any:
        return value

    def zero(self) -> Any:
        return None


class _Str(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        ctx.errors.append(
            f"'{path}' expected type 'string', got unconvertible type '{_go_kind(value)}'"
        )
        return ""

    def zero(self) -> Any:
        return ""


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"", "0", "f", "F", "FALSE", "false", "False"}


class _Bool(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        if isinstance(value, int | float):
            return value != 0
        if isinstance(value, str) and (value in _TRUE or value in _FALSE):
            return value in _TRUE
        if isinstance(value, str):
            ctx.errors.append(
                f"cannot parse '{path}' as bool: strconv.ParseBool: parsing "
                f"{go_quote(value)}: invalid syntax"
            )
            return False
        ctx.errors.append(
            f"'{path}' expected type 'bool', got unconvertible type '{_go_kind(value)}'"
        )
        return False

    def zero(self) -> Any:
        return False


_INT_MIN, _INT_MAX, _UINT_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


class _Int(_Type):
    def __init__(self, unsigned: bool = False) -> None:
        self.unsigned = unsigned

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return 0
        if isinstance(value, bool):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                ctx.errors.append(f"cannot parse '{path}' as int: {value!r} is not a number")
                return 0
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value, 0) if value.strip() else 0
            except ValueError:
                try:
                    number = int(value)
                except ValueError:
                    kind = "uint" if self.unsigned else "int"
                    fn = "ParseUint" if self.unsigned else "ParseInt"
                    ctx.errors.append(
                        f"cannot parse '{path}' as {kind}: strconv.{fn}: parsing "
                        f"{go_quote(value)}: invalid syntax"
                    )
                    return 0
        else:
            ctx.errors.append(
                f"'{path}' expected type 'int', got unconvertible type '{_go_kind(value)}'"
            )
            return 0
        if self.unsigned and number < 0:
            ctx.errors.append(f"cannot parse '{path}', {number} overflows uint")
            return 0
        if not _INT_MIN <= number <= (_UINT_MAX if self.unsigned else _INT_MAX):
            kind = "uint" if self.unsigned else "int"
            ctx.errors.append(f"cannot parse '{path}', {number} overflows {kind}")
            return 0
        return number

    def zero(self) -> Any:
        return 0


class _Float(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return 0.0
        if isinstance(value, bool | int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
            ctx.errors.append(
                f"cannot parse '{path}' as float: strconv.ParseFloat: parsing "
                f"{go_quote(value)}: invalid syntax"
            )
            return 0.0
        ctx.errors.append(
            f"'{path}' expected type 'float32', got unconvertible type '{_go_kind(value)}'"
        )
        return 0.0

    def emit(self, value: Any) -> Any:
        # Go prints 50 for float32(50); keep integral weights integral in JSON too.
        return int(value) if float(value).is_integer() else value

    def zero(self) -> Any:
        return 0


class _Duration(_Type):
    """A Go time.Duration held as integer nanoseconds. `as_string`: Consul prints this one
    as a Go duration string (it has a custom marshaller); otherwise as a nanosecond count."""

    def __init__(self, as_string: bool = True) -> None:
        self.as_string = as_string

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None or value == "":
            return 0
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)  # reported below as an invalid duration
        try:
            ns = duration_from_json(value)
        except DurationError as err:
            ctx.errors.append(f"error decoding '{path}': {err}")
            return 0
        if not _INT_MIN <= ns <= _INT_MAX:
            ctx.errors.append(f"error decoding '{path}': time: invalid duration {value!r}")
            return 0
        return ns

    def emit(self, value: Any) -> Any:
        return format_duration_ns(value) if self.as_string else value

    def zero(self) -> Any:
        return "" if self.as_string else 0


class _Time(_Type):
    """An RFC 3339 timestamp, kept as the string (the legacy intention times)."""

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
                return value
            except ValueError:
                pass
            ctx.errors.append(
                f"error decoding '{path}': parsing time {go_quote(value)} as "
                f'"2006-01-02T15:04:05Z07:00": cannot parse'
            )
            return None
        ctx.errors.append(
            f"'{path}' expected type 'time.Time', got unconvertible type '{_go_kind(value)}'"
        )
        return None


class _AnyMap(_Type):
    """A free-form map (`proxy-defaults` Config, extension arguments): kept as given."""

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            return _plain(value)
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            return _plain(value[0]) if value else {}
        ctx.errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
        return None


def _plain(value: Any) -> Any:
    """A deep copy made of JSON types only (tuples become lists, keys become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _List(_Type):
    def __init__(self, item: _Type) -> None:
        self.item = item

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            if isinstance(value, dict) and not value:
                return []
            value = [value]  # weak typing: a single value for a one-element list
        return [self.item.decode(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]

    def emit(self, value: Any) -> Any:
        return None if value is None else [self.item.emit(v) for v in value]


class _Map(_Type):
    """A map from string keys to values of one type (`Subsets`, `Failover`, `Meta`)."""

    def __init__(self, item: _Type) -> None:
        self.item = item

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            value = value[0] if value else {}
        if not isinstance(value, dict):
            ctx.errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
            return None
        return {str(k): self.item.decode(v, f"{path}[{k}]", ctx) for k, v in value.items()}

    def emit(self, value: Any) -> Any:
        return None if value is None else {k: self.item.emit(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: _Type
    always: bool  # printed even when empty (no `omitempty` in Consul's struct, or a struct)
    aliases: tuple[str, ...]


def F(name: str, type_: _Type, *, always: bool = False, alias: str = "") -> _Field:
    aliases = {_snake(name)}
    if alias:
        aliases.add(alias)
    aliases.discard(name)
    return _Field(name, type_, always, tuple(sorted(aliases)))


# Keys Consul tolerates on any entry without a field to land in.
_IGNORED_KEYS = frozenset({"Kind", "kind", "CreateIndex", "ModifyIndex", "Hash"})


class _Obj(_Type):
    """A Go struct: named fields, keys matched exactly, by alias, or case-insensitively."""

    def __init__(self, *fields: _Field) -> None:
        self.fields = fields
        self.by_key: dict[str, _Field] = {}
        for f in fields:
            self.by_key[f.name.lower()] = f
            for alias in f.aliases:
                self.by_key.setdefault(alias.lower(), f)

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            value = value[0] if value else {}  # HCL's one-element block list
        if not isinstance(value, dict):
            ctx.errors.append(f"'{path or '<root>'}' expected a map, got '{_go_kind(value)}'")
            return None
        out: dict[str, Any] = {}
        exact: set[str] = set()
        for key, raw in value.items():
            key = str(key)
            field = self.by_key.get(key.lower())
            where = f"{path}.{key}" if path else key
            if field is None:
                if not path and key in _IGNORED_KEYS:
                    continue
                if ctx.strict:
                    ctx.unused.append(where)
                continue
            if field.name in exact:
                continue  # the exactly named key wins over an alias
            if key == field.name:
                exact.add(field.name)
            sub = f"{path}.{field.name}" if path else field.name
            out[field.name] = field.type.decode(raw, sub, ctx)
        return out

    def emit(self, value: Any) -> Any:
        if value is None:
            return None
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name in value:
                v = value[f.name]
                if f.always or not _is_empty(f.type, v):
                    out[f.name] = f.type.emit(v) if v is not None else f.type.zero()
            elif f.always:
                out[f.name] = self.zero_of(f)
        return out

    @staticmethod
    def zero_of(f: _Field) -> Any:
        if isinstance(f.type, _Obj):
            return f.type.emit({})
        return f.type.zero()

    def zero(self) -> Any:
        return self.emit({})


def _is_empty(type_: _Type, value: Any) -> bool:
    """Go's `omitempty`: zero scalars, nil or empty lists and maps. A struct is only left out
    when it is absent (a nil pointer); one given as {} is printed."""
    if value is None:
        return True
    if isinstance(type_, _Obj):
        return False
    return value is False or value == 0 or value == "" or value == [] or value == {}


STR = _Str()
BOOL = _Bool()
INT = _Int()
UINT = _Int(unsigned=True)
FLOAT = _Float()
DURATION = _Duration(as_string=True)
DURATION_NS = _Duration(as_string=False)
TIME = _Time()
ANY_MAP = _AnyMap()
STR_LIST = _List(STR)
UINT_LIST = _List(UINT)
STR_MAP = _Map(STR)


def _name_fields() -> tuple[_Field, _Field]:
    return F("Kind", STR, always=True), F("Name", STR, always=True)


def decode(schema: _Obj, body: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Decode `body` against `schema` into our field values. Raises EntryError(decoding=True)
    with mapstructure's or Consul's text. With strict=False unknown keys are ignored, as Go's
    encoding/json does for the intention endpoints' bodies."""
    ctx = _Ctx(strict)
    out = schema.decode(dict(body), "", ctx)
    if ctx.errors:
        points = "\n".join(sorted(f"* {e}" for e in ctx.errors))
        raise EntryError(f"{len(ctx.errors)} error(s) decoding:\n\n{points}", decoding=True)
    if ctx.unused:
        raise EntryError(multierror([_unused_key_text(k) for k in ctx.unused]), decoding=True)
    return out or {}


def _unused_key_text(key: str) -> str:
    lower = key.lower()
    if lower.endswith("namespace"):
        return f"invalid config key {go_quote(key)}, namespaces are a consul enterprise feature"
    if lower.endswith("partition"):
        return f"invalid config key {go_quote(key)}, partitions are a consul enterprise feature"
    return f"invalid config key {go_quote(key)}"
