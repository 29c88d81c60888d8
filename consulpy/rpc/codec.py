"""RPC framing: a 4-byte big-endian length, then a msgpack body; lengths are checked before
anything is allocated for a frame.

Request:  {"s": seq, "m": method, "a": args}
Response: {"s": seq, "r": result} or {"s": seq, "e": error kind, "t": error text}
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

PROTO_RPC = 0x00
# Big enough for a snapshot restore (a 256 MB archive travels in one forwarded write); the
# length is checked before anything is allocated.
MAX_FRAME = 300 << 20
_LEN = struct.Struct(">I")


class FrameError(Exception):
    """A malformed or oversized frame: the connection is dropped."""


def encode(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, max_size: int = MAX_FRAME) -> Any:
    (length,) = _LEN.unpack(await reader.readexactly(4))
    if length > max_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_size} byte limit")
    payload = await reader.readexactly(length)
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise FrameError(f"undecodable frame: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("s"), int):
        raise FrameError("frame is not an RPC message")
    return obj
