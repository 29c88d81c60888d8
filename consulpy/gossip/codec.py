"""Go msgpack dialect (go-msgpack ``MsgpackHandle{}`` zero value) as spoken by memberlist/Serf.

Why a module of its own: Go writes both ``string`` and ``[]byte`` as old-spec *raw*, so on
the wire they are indistinguishable. We encode with ``use_bin_type=False`` (byte-for-byte
what Go writes) and decode with ``raw=True``, converting each field to str or bytes where
the struct says which it is.
"""

from __future__ import annotations

from typing import Any

import msgpack

# Bound on what one decoded msgpack object may contain: protects against hostile lengths.
_MAX_LEN = 20 * 1024 * 1024


class DecodeError(ValueError):
    """Input bytes are not a well-formed message of the expected shape."""


def pack(obj: Any) -> bytes:
    """Encode like go-msgpack: str and bytes both as raw (fixstr/str16/str32)."""
    return msgpack.packb(obj, use_bin_type=False)


def unpack(data: bytes) -> Any:
    """Decode one complete msgpack object; strings come back as bytes (``raw=True``)."""
    try:
        return msgpack.unpackb(
            data,
            raw=True,
            strict_map_key=False,
            max_bin_len=_MAX_LEN,
            max_str_len=_MAX_LEN,
            max_array_len=1 << 20,
            max_map_len=1 << 20,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"bad msgpack: {exc}") from exc


def unpack_prefix(data: bytes | memoryview, offset: int = 0) -> tuple[Any, int]:
    """Decode one object starting at ``offset``; return it and the offset just past it.

    Plaintext push-pull streams carry consecutive msgpack objects with no length framing.
    """
    unpacker = msgpack.Unpacker(
        raw=True,
        strict_map_key=False,
        max_buffer_size=_MAX_LEN + 1024,
    )
    unpacker.feed(bytes(data[offset:]))
    try:
        obj = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise DecodeError("truncated msgpack object") from exc
    except (ValueError, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"bad msgpack: {exc}") from exc
    return obj, offset + unpacker.tell()


def as_map(obj: Any, what: str) -> dict[bytes, Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"{what}: expected a map, got {type(obj).__name__}")
    return obj


def get_bytes(m: dict[bytes, Any], key: str, default: bytes = b"") -> bytes:
    """A ``[]byte`` field: raw, bin, or nil (Go's nil slice)."""
    v = m.get(key.encode())
    if v is None:
        return default
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    if isinstance(v, list) and all(isinstance(x, int) for x in v):
        return bytes(v)  # tolerate an array of small ints
    raise DecodeError(f"field {key}: expected bytes, got {type(v).__name__}")


def get_str(m: dict[bytes, Any], key: str, default: str = "") -> str:
    """A Go ``string`` field. Node names need not be UTF-8: decode with surrogateescape."""
    v = m.get(key.encode())
    if v is None:
        return default
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", "surrogateescape")
    if isinstance(v, str):
        return v
    raise DecodeError(f"field {key}: expected string, got {type(v).__name__}")


def get_int(m: dict[bytes, Any], key: str, default: int = 0) -> int:
    v = m.get(key.encode())
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise DecodeError(f"field {key}: expected integer, got {type(v).__name__}")
    return v


def get_uint(m: dict[bytes, Any], key: str, bits: int, default: int = 0) -> int:
    v = get_int(m, key, default)
    if v < 0 or v >= (1 << bits):
        raise DecodeError(f"field {key}: {v} out of range for uint{bits}")
    return v


def get_bool(m: dict[bytes, Any], key: str, default: bool = False) -> bool:
    v = m.get(key.encode())
    if v is None:
        return default
    if not isinstance(v, bool):
        raise DecodeError(f"field {key}: expected bool, got {type(v).__name__}")
    return v


def text(s: str) -> bytes:
    """Encode a Go string field (inverse of get_str)."""
    return s.encode("utf-8", "surrogateescape")


def str_map(obj: Any, what: str) -> dict[str, str]:
    """A Go ``map[string]string`` decoded with raw=True."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise DecodeError(f"{what}: expected a map")
    out: dict[str, str] = {}
    for k, v in obj.items():
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            raise DecodeError(f"{what}: expected string keys and values")
        out[k.decode("utf-8", "surrogateescape")] = v.decode("utf-8", "surrogateescape")
    return out
