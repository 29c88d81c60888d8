"""The state store's snapshot bytes, written and read as a stream.

The bytes are one msgpack map (the layout `StateStore.snapshot` has always produced); here it
is packed element by element into a file and unpacked element by element from one, so a
snapshot of a large store never exists as one `bytes` object next to a list of every row
dumped. The big tables (KV entries) are converted row by row; the small sections (catalog,
connect, ACL, ...) are unpacked whole, their rows becoming the table's rows directly.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO, Any

import msgpack

_READ = 1 << 16
_MAX_OBJECT = (1 << 31) - 1


def write(doc: dict[str, Any], out: IO[bytes]) -> None:
    """Pack `doc` into `out` as msgpack, the same bytes `msgpack.packb(doc)` gives, without
    holding them all: maps and lists in the top three levels are opened and their items
    packed one by one; KV entries and sessions (row objects) are dumped one at a time."""
    _emit(doc, 3, out, msgpack.Packer(use_bin_type=True))  # each pack call returns its bytes


def _emit(obj: Any, depth: int, out: IO[bytes], packer: msgpack.Packer) -> None:
    """A module-level function, not a closure: a recursive closure is a reference cycle
    (function -> cell -> function) that would keep `out` (a buffer holding the whole
    snapshot) alive until the next full garbage collection, which an idle server may not
    run for a long time."""
    if depth > 0 and isinstance(obj, dict):
        out.write(packer.pack_map_header(len(obj)))
        for key, value in obj.items():
            out.write(packer.pack(key))
            _emit(value, depth - 1, out, packer)
    elif depth > 0 and isinstance(obj, list | tuple):
        out.write(packer.pack_array_header(len(obj)))
        dump_item = getattr(obj, "dump_item", None)  # packed rows (state/kv.py FrozenRows)
        if dump_item is not None:
            for item in obj:
                out.write(packer.pack(dump_item(item)))
            return
        for item in obj:
            _emit(item, depth - 1, out, packer)
    else:
        dump = getattr(obj, "dump", None)
        out.write(packer.pack(dump() if callable(dump) else obj))


class FrozenState:
    """A point-in-time view of the store (`StateStore.freeze`), serialised on demand: in
    process it is streamed to a file; over RPC it travels as the snapshot bytes."""

    __slots__ = ("doc",)

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def write_to(self, out: IO[bytes]) -> None:
        write(self.doc, out)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        write(self.doc, buf)
        return buf.getvalue()


class Inflater:
    """A read-only file over zlib-compressed bytes, decompressed as it is read (the Raft
    restore command carries the state compressed; it is unpacked through this)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._z = zlib.decompressobj()
        self._pending = b""

    def read(self, n: int = -1) -> bytes:
        want = _READ if n is None or n < 0 else n
        while len(self._pending) < want and not self._z.eof:
            if self._pos >= len(self._data):
                if not self._z.eof:
                    raise ValueError("compressed snapshot state is truncated")
                break
            piece = self._data[self._pos : self._pos + _READ]
            self._pos += len(piece)
            self._pending += self._z.decompress(piece)
        out, self._pending = self._pending[:want], self._pending[want:]
        return out


class _ViewReader:
    """A read-only file over a buffer (bytes or bytearray) that copies only what each read
    returns (io.BytesIO copies a whole bytearray first)."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._pos + n
        out = bytes(self._data[self._pos : end])
        self._pos += len(out)
        return out


def buffer_reader(data: bytes | bytearray) -> IO[bytes]:
    """A file to read a snapshot held in memory from, without copying it whole."""
    if isinstance(data, bytes):
        return io.BytesIO(data)  # shares the bytes until written to
    return _ViewReader(data)  # type: ignore[return-value]


def compress(src: IO[bytes], level: int = 6) -> bytes:
    """zlib-compress a file read in chunks (what the Raft restore command carries)."""
    z = zlib.compressobj(level)
    parts = []
    while chunk := src.read(1 << 20):
        parts.append(z.compress(chunk))
    parts.append(z.flush())
    return b"".join(parts)


class Reader:
    """Unpacks the snapshot map from a file one section at a time."""

    def __init__(self, src: IO[bytes]) -> None:
        # The buffer only grows to the largest single object read whole (a section such as
        # the catalog); no cap below what a whole-bytes unpack allowed, or a large store that
        # loaded before would stop loading (at start, from its Raft snapshot).
        self.unpacker = msgpack.Unpacker(
            src, raw=False, strict_map_key=False, read_size=_READ, max_buffer_size=_MAX_OBJECT
        )

    def sections(self) -> Iterator[str]:
        """The top-level keys in order; the caller reads each value before the next key."""
        count = self.unpacker.read_map_header()
        for _ in range(count):
            key = self.unpacker.unpack()
            if not isinstance(key, str):
                raise ValueError(f"bad state snapshot section {key!r}")
            yield key

    def value(self) -> Any:
        return self.unpacker.unpack()

    def map_keys(self) -> Iterator[str]:
        count = self.unpacker.read_map_header()
        for _ in range(count):
            yield self.unpacker.unpack()

    def items(self) -> Iterator[Any]:
        """The items of the list that comes next, unpacked one at a time."""
        count = self.unpacker.read_array_header()
        for _ in range(count):
            yield self.unpacker.unpack()

    def finish(self) -> None:
        """Refuse trailing bytes (a snapshot is exactly one map)."""
        try:
            self.unpacker.unpack()
        except msgpack.OutOfData:
            return
        raise ValueError("trailing data after the state snapshot")
