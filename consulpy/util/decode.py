"""Decoding request bodies with Go's `encoding/json` leniency and error texts.

Consul decodes bodies into Go structs: keys match field names case-insensitively (py-consul
sends `lockdelay`, `serviceid`), service and check definitions also accept snake_case
(`tagged_addresses`), JSON null leaves a field at its zero value, and a wrong type fails with
`json: cannot unmarshal <kind> into Go struct field <Struct>.<Field> of type <type>`. A
`Struct` spec describes the Go struct; `decode` returns a dict with canonical field names
(only the fields present in the body, unless `fill_defaults`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from consulpy.util.durations import DurationError, duration_from_json

UINT64_MAX = (1 << 64) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class DecodeError(ValueError):
    """The body does not fit the struct; the message is Go's json error text."""


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass
class Struct:
    """A Go struct: canonical field name -> type. Types: "string", "bool", "int", "uint64",
    "float", "bytes" (base64), "duration" (Go string or ns number -> int ns), "any",
    another Struct, ListOf(t), MapOf(t)."""

    name: str
    fields: dict[str, Any]
    strict: bool = True
    aliases: dict[str, str] = field(default_factory=dict)
    _lookup: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lookup = {_norm(k): k for k in self.fields}
        for alias, target in self.aliases.items():
            self._lookup[_norm(alias)] = target

    def resolve(self, key: str) -> str | None:
        return self._lookup.get(_norm(key))


_GO_TYPES = {
    "string": "string",
    "bool": "bool",
    "int": "int",
    "uint64": "uint64",
    "float": "float64",
    "bytes": "[]uint8",
    "duration": "time.Duration",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_name(spec: Any) -> str:
    if isinstance(spec, Struct):
        return "structs." + spec.name
    if isinstance(spec, ListOf):
        return "[]" + _type_name(spec.item)
    if isinstance(spec, MapOf):
        return "map[string]" + _type_name(spec.value)
    if spec == "any":
        return "interface {}"
    return _GO_TYPES.get(spec, str(spec))


def _mismatch(value: Any, spec: Any, path: str) -> DecodeError:
    kind = _json_kind(value)
    if kind == "number":
        kind = f"number {value}" if not isinstance(value, float) or value.is_integer() else "number"
    return DecodeError(
        f"json: cannot unmarshal {kind} into Go struct field {path} of type {_type_name(spec)}"
    )


def decode_value(value: Any, spec: Any, path: str) -> Any:
    if value is None:
        return None
    if spec == "any":
        return value
    if isinstance(spec, Struct):
        if not isinstance(value, dict):
            raise _mismatch(value, spec, path)
        return decode_struct(value, spec, path)
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise _mismatch(value, spec, path)
        return [decode_value(v, spec.item, path) for v in value]
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise _mismatch(value, spec, path)
        return {str(k): decode_value(v, spec.value, path) for k, v in value.items()}
    if spec == "string":
        if not isinstance(value, str):
            raise _mismatch(value, spec, path)
        return value
    if spec == "bool":
        if not isinstance(value, bool):
            raise _mismatch(value, spec, path)
        return value
    if spec in ("int", "uint64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _mismatch(value, spec, path)
        if isinstance(value, float) and not value.is_integer():
            raise _mismatch(value, spec, path)
        low, high = (0, UINT64_MAX) if spec == "uint64" else (INT64_MIN, INT64_MAX)
        if not low <= value <= high:
            raise _mismatch(value, spec, path)  # the number as sent (1e+300), not int()'s
        return int(value)
    if spec == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _mismatch(value, spec, path)
        return float(value)
    if spec == "bytes":
        if not isinstance(value, str):
            raise _mismatch(value, spec, path)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"illegal base64 data at input byte {_bad_b64_at(value)}") from exc
    if spec == "duration":
        try:
            return duration_from_json(value)
        except DurationError as exc:
            raise DecodeError(str(exc)) from exc
    raise AssertionError(f"unknown spec {spec!r}")


def _bad_b64_at(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch not in alphabet and ch != "=":
            return i
    return max(len(text) - len(text) % 4, 0)


def decode_struct(obj: dict[str, Any], spec: Struct, path: str | None = None) -> dict[str, Any]:
    prefix = path or spec.name
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = spec.resolve(key)
        if name is None:
            if spec.strict:
                raise DecodeError(f'json: unknown field "{key}"')
            continue
        out[name] = decode_value(value, spec.fields[name], f"{prefix}.{name}")
    return out


# Deeper documents are refused: msgpack (the log) and the renderers recurse too, and Python's
# parser gives up near 1000 levels (RecursionError, caught below). Consul's bodies nest a few
# levels; Go's own limit (10000) is far above anything a real client sends.
MAX_DEPTH = 256
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _check_depth(body: bytes) -> None:
    """Refuse a document nested deeper than MAX_DEPTH. Only called on a body the parser
    accepted: every string in it is terminated, so removing them with the regex is linear
    (on arbitrary bytes an unterminated string would make it quadratic)."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = 0
    for ch in brackets:
        if ch in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise DecodeError("exceeded max depth")
        else:
            depth -= 1


def _go_number_error(text: str, go_type: str) -> DecodeError:
    return DecodeError(f"json: cannot unmarshal number {text} into Go value of type {go_type}")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: Go's float64 cannot hold it either
        raise _go_number_error(text, "float64")
    return value


def _parse_int(text: str) -> int | float:
    # Go decodes an untyped number as float64; the wire formats (msgpack) hold 64 bits.
    if len(text) <= 20:
        value = int(text)
        if INT64_MIN <= value <= UINT64_MAX:
            return value
    return _parse_float(text)


def _no_constants(name: str) -> Any:
    raise DecodeError(f"invalid character {name[0]!r} looking for beginning of value")


def check_text(value: Any) -> None:
    """Refuse lone UTF-16 surrogates (`"\\ud800"`) anywhere in the document: they cannot be
    encoded as UTF-8, so msgpack (the log), the renderers and DNS would fail on them later."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                raise DecodeError(
                    f"invalid character in string literal: lone UTF-16 surrogate in {item!r}"
                )
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(body: bytes | str) -> Any:
    """The one way a request body becomes JSON values: Go-like error texts, nesting bounded
    (MAX_DEPTH), numbers finite and within 64 bits, strings valid Unicode (no lone
    surrogates). Raises DecodeError for anything else."""
    if isinstance(body, str):
        try:
            body = body.encode()
        except UnicodeEncodeError as exc:
            raise DecodeError("invalid character in string literal") from exc
    try:
        value = json.loads(
            body,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_no_constants,
        )
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid character in string literal") from exc
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc):
            raise DecodeError("unexpected EOF") from exc
        ch = exc.doc[exc.pos]
        raise DecodeError(f"invalid character {ch!r} looking for beginning of value") from exc
    except RecursionError as exc:  # far deeper than MAX_DEPTH: the parser's own limit
        raise DecodeError("exceeded max depth") from exc
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:  # else it cannot be that deep
        _check_depth(body)
    if _SURROGATE_ESCAPE.search(body):  # the only way JSON text can carry a surrogate
        check_text(value)
    return value
