"""The typed request every endpoint takes, and its msgpack wire form.

Requests are frozen dataclasses, not msgspec Structs: the payloads are flat records of a few
str/int/bytes/dict fields, msgpack is already the codec of the RPC wire, and the type check a
server needs on untrusted input (`decode_payload`, below) is a few lines. That keeps the
dependency list as it is; if payloads grow nested typed records, msgspec.convert would replace
`decode_payload` without changing the callers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from consulpy.server.errors import RequestError
from consulpy.server.query import QueryOptions

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Empty:
    """The payload of an endpoint that takes no arguments."""


@dataclass(frozen=True, slots=True)
class Request(typing.Generic[P]):
    """What an endpoint receives: who asks (token), where (datacenter), how to read
    (options: consistency, blocking index and wait, filter) and the endpoint's payload."""

    payload: P
    datacenter: str = ""
    token: str = ""  # the caller's ACL token; agent-internal calls carry the agent token
    options: QueryOptions = field(default_factory=QueryOptions)

    def to_wire(self) -> dict[str, Any]:
        return {
            "dc": self.datacenter,
            "token": self.token,
            "opts": self.options.to_wire(),
            "payload": payload_to_wire(self.payload),
        }

    @classmethod
    def from_wire(cls, wire: Any, payload_type: type[P]) -> Request[P]:
        if not isinstance(wire, dict):
            raise RequestError("malformed request: expected a map")
        extra = set(wire) - {"dc", "token", "opts", "payload"}
        if extra:
            raise RequestError(f"malformed request: unknown fields {sorted(extra)}")
        dc, token, opts = wire.get("dc", ""), wire.get("token", ""), wire.get("opts") or {}
        if not isinstance(dc, str) or not isinstance(token, str) or not isinstance(opts, dict):
            raise RequestError("malformed request: dc and token must be strings, opts a map")
        return cls(
            payload=decode_payload(payload_type, wire.get("payload")),
            datacenter=dc,
            token=token,
            options=decode_payload(QueryOptions, opts),
        )


def payload_to_wire(payload: Any) -> dict[str, Any]:
    return {name: getattr(payload, name) for name in _checkers(type(payload))}


def type_checker(hint: Any) -> Callable[[Any], bool]:
    """A predicate for values of the annotated type (the few shapes payloads use); lists
    and maps check their elements too."""
    if hint is Any:
        return lambda _v: True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [type_checker(h) for h in typing.get_args(hint)]
        return lambda v: any(check(v) for check in parts)
    if hint is type(None):
        return lambda v: v is None
    if origin is list and typing.get_args(hint):
        (item_hint,) = typing.get_args(hint)
        item = type_checker(item_hint)
        return lambda v: isinstance(v, list) and all(item(x) for x in v)
    if origin is dict and typing.get_args(hint):
        key_hint, value_hint = typing.get_args(hint)
        key, value = type_checker(key_hint), type_checker(value_hint)
        return lambda v: isinstance(v, dict) and all(key(k) and value(x) for k, x in v.items())
    base = origin if origin is not None else hint
    if base is float:
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if base is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    return lambda v: isinstance(v, base)


def _non_finite(value: Any) -> float | None:
    """The first NaN or infinity in `value` (recursively): msgpack carries them, JSON cannot
    (every read of the row would render invalid JSON)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _bad_text(value: Any) -> str | None:
    """The first string in `value` (recursively) that is not valid Unicode text (a lone
    surrogate, which JSON's \\ud800 escapes can produce and msgpack cannot encode)."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _bad_text(k) or _bad_text(v)
            if bad is not None:
                return bad
    elif isinstance(value, list | tuple):
        for v in value:
            bad = _bad_text(v)
            if bad is not None:
                return bad
    return None


@functools.cache
def _checkers(payload_type: type) -> dict[str, Callable[[Any], bool]]:
    hints = typing.get_type_hints(payload_type)
    return {f.name: type_checker(hints[f.name]) for f in dataclasses.fields(payload_type)}


# Values no recursive check can find anything in (floats and containers need a look).
_PLAIN = frozenset({int, bool, bytes, type(None)})


def _bad_value(payload_type: type, value: Any, numbers: bool = True) -> str | None:
    """Why `value` (a field's value, its type already checked) cannot be stored: a NaN or an
    infinity (with `numbers`), or a string that is not valid Unicode text; None when it can.
    Plain ASCII strings and ints, the usual fields, are decided without a call."""
    cls = type(value)
    if cls is str:
        if value.isascii():
            return None
    elif cls in _PLAIN:
        return None
    elif numbers:
        bad_number = _non_finite(value)
        if bad_number is not None:
            return f"malformed {payload_type.__name__}: {bad_number} is not a finite number"
    bad = _bad_text(value)
    if bad is not None:
        return (
            f"malformed {payload_type.__name__}: {bad.encode('utf-8', 'backslashreplace')!r}"
            " is not valid UTF-8 text"
        )
    return None


def plain_fields(payload_type: type) -> tuple[tuple[str, type], ...] | None:
    """The fields of a payload whose every field is declared `str`, `int` or `bytes`, with
    their types (None for any other payload): a value of exactly that type (and ASCII text)
    passes `check_payload` without a further look."""
    return _plain_fields(payload_type)


@functools.cache
def _plain_fields(payload_type: type) -> tuple[tuple[str, type], ...] | None:
    """The fields of a payload whose every field is declared `str`, `int` or `bytes` (KVSGet,
    ...), with their types; None for any other payload."""
    hints = typing.get_type_hints(payload_type)
    fields = tuple((f.name, hints[f.name]) for f in dataclasses.fields(payload_type))
    if all(hint in (str, int, bytes) for _name, hint in fields):
        return fields
    return None


def decode_payload(payload_type: type[P], data: Any) -> P:
    """Build a payload from its wire map, refusing unknown fields and wrongly typed values
    (a raw RPC client can send anything), NaN or infinity anywhere, and invalid text."""
    if not isinstance(data, dict):
        raise RequestError(f"malformed {payload_type.__name__}: expected a map")
    checkers = _checkers(payload_type)
    for name, value in data.items():
        check = checkers.get(name)
        if check is None:
            raise RequestError(f"malformed {payload_type.__name__}: unknown field {name!r}")
        if not check(value):
            raise RequestError(
                f"malformed {payload_type.__name__}: field {name} has type {type(value).__name__}"
            )
    # A second pass, so that a wrong type anywhere is reported before a bad value.
    for value in data.values():
        problem = _bad_value(payload_type, value)
        if problem is not None:
            raise RequestError(problem)
    try:
        return payload_type(**data)
    except TypeError as exc:
        raise RequestError(f"malformed {payload_type.__name__}: {exc}") from exc


def check_payload(payload_type: type[P], payload: P) -> P:
    """The checks `decode_payload` makes on a wire map (field types, valid text; floats are
    the caller's own), on a payload built in process; returns it as it is. Equivalent to
    decode_payload(type, payload_to_wire(p)) without building a map and a second payload per
    call (the payloads are frozen)."""
    if type(payload) is not payload_type:
        return decode_payload(payload_type, payload_to_wire(payload))
    plain = _plain_fields(payload_type)
    if plain is not None:
        # Every field a str, int or bytes: exact types and ASCII text pass at once; anything
        # else (a subclass, non-ASCII text, a wrong type) takes the full checks below.
        for name, cls in plain:
            value = getattr(payload, name)
            if type(value) is not cls or (cls is str and not value.isascii()):
                break
        else:
            return payload
    checkers = _checkers(payload_type)
    values = [(name, getattr(payload, name)) for name in checkers]
    for name, value in values:
        if not checkers[name](value):
            raise RequestError(
                f"malformed {payload_type.__name__}: field {name} has type {type(value).__name__}"
            )
    for _name, value in values:
        problem = _bad_value(payload_type, value, numbers=False)
        if problem is not None:
            raise RequestError(problem)
    return payload
