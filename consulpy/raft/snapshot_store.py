"""Snapshot store: one file per snapshot, written to a temp name, fsynced, then renamed.

File layout: magic, a 4-byte big-endian header length, the msgpack header (metadata, data
length, CRC32 of the data), then the data. A file that fails any check is treated as absent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import msgpack

from consulpy.raft.types import Snapshot, SnapshotData, SnapshotMeta

log = logging.getLogger("consulpy.raft")

_MAGIC = b"CPYRAFTSNAP1"
_MAX_HEADER = 1 << 20
_COPY = 1 << 20  # chunk for copying a snapshot whose data is a file


class SnapshotFile:
    """The data of a snapshot that is on disk, read on demand (len() and slicing, as bytes).

    Why: the leader keeps its latest snapshot to send to followers that fall behind; holding
    it as bytes costs the whole state a second time in RAM. This keeps an open descriptor
    instead (the file stays readable after retention unlinks it) and reads only the chunk
    being sent. The data was checksummed when it was written or loaded.
    """

    __slots__ = ("_fd", "_offset", "_size")

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._offset = offset
        self._size = size

    @classmethod
    def from_fd(cls, fd: int, offset: int, size: int) -> SnapshotFile:
        """Over an open file (a duplicate of `fd`: the caller keeps its own), such as an
        unnamed temporary file that the kernel frees whatever happens to the process."""
        new = cls.__new__(cls)
        new._fd = os.dup(fd)
        new._offset = offset
        new._size = size
        return new

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice) -> bytes:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("SnapshotFile supports only contiguous slices")
        start, stop, _ = key.indices(self._size)
        if stop <= start:
            return b""
        out = os.pread(self._fd, stop - start, self._offset + start)
        if len(out) != stop - start:
            raise OSError(f"snapshot file shorter than recorded ({self._offset + start})")
        return out

    def __bytes__(self) -> bytes:
        return self[0 : self._size]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


class SnapshotReader:
    """A read-only file over a snapshot's data (bytes or a SnapshotFile): positional reads of
    what is asked, never a copy of the whole. What a state machine loads a snapshot from."""

    def __init__(self, data: bytes | bytearray | SnapshotData) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        size = len(self._data)
        end = size if n is None or n < 0 else min(size, self._pos + n)
        out = bytes(self._data[self._pos : end])
        self._pos += len(out)
        return out


class SpoolBuffer(SnapshotFile):
    """A buffer of a fixed size in an unnamed temporary file (freed by the kernel even on a
    kill -9), written in place by slices: what a follower receives a snapshot into, so a
    large one is never held in memory; read back like any SnapshotFile."""

    __slots__ = ()

    def __init__(self, size: int, directory: str | None = None) -> None:
        with tempfile.TemporaryFile(dir=directory, prefix=".spool-") as f:
            os.ftruncate(f.fileno(), size)
            self._fd = os.dup(f.fileno())
        self._offset = 0
        self._size = size

    def __setitem__(self, key: slice, value: bytes) -> None:
        start, stop, _ = key.indices(self._size)
        if key.step not in (None, 1) or stop - start != len(value):
            raise ValueError("SpoolBuffer takes contiguous slices of the same length")
        view = memoryview(value)
        while view:
            written = os.pwrite(self._fd, view, start)
            view, start = view[written:], start + written


class SnapshotStore(Protocol):
    def save(self, snapshot: Snapshot) -> None: ...
    def load(self, index: int, term: int) -> Snapshot | None: ...
    def open_data(self, index: int, term: int) -> SnapshotFile | None: ...
    def available(self) -> list[tuple[int, int]]: ...
    def close(self) -> None: ...


class MemorySnapshotStore:
    def __init__(self, retain: int = 2) -> None:
        self.retain = retain
        self.snapshots: dict[tuple[int, int], Snapshot] = {}
        self._lock = threading.Lock()

    def save(self, snapshot: Snapshot) -> None:
        with self._lock:
            m = snapshot.meta
            self.snapshots[(m.index, m.term)] = snapshot
            keys = sorted(self.snapshots, key=lambda k: k[0])
            for key in keys[: max(0, len(keys) - self.retain)]:
                del self.snapshots[key]

    def load(self, index: int, term: int) -> Snapshot | None:
        with self._lock:
            return self.snapshots.get((index, term))

    def available(self) -> list[tuple[int, int]]:
        """(index, term) of every retained snapshot, newest first."""
        with self._lock:
            return sorted(self.snapshots, reverse=True)

    def open_data(self, index: int, term: int) -> SnapshotFile | None:
        return None  # in memory already: nothing to gain

    def close(self) -> None:
        pass


def _read_header(f: BinaryIO) -> tuple[Any, int, int] | None:
    """A snapshot file's header (meta, data size, CRC-32), leaving `f` at the data; None when
    the magic or the header length is wrong. Malformed msgpack raises for the caller."""
    if f.read(len(_MAGIC)) != _MAGIC:
        return None
    (hlen,) = struct.unpack(">I", f.read(4))
    if hlen > _MAX_HEADER:
        return None
    raw_meta, size, crc = msgpack.unpackb(f.read(hlen))
    return raw_meta, size, crc


class FileSnapshotStore:
    def __init__(self, directory: str, retain: int = 2) -> None:
        self.dir = directory
        self.retain = max(1, retain)
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith(".tmp-"):
                os.unlink(os.path.join(directory, name))  # left over from a crash mid-write

    @staticmethod
    def _name(index: int, term: int) -> str:
        return f"{index:020d}-{term:020d}.snap"

    def save(self, snapshot: Snapshot) -> None:
        """Write the snapshot; data that is not bytes (a file read on demand, such as a
        restore's spooled state) is copied in chunks, never read whole."""
        m = snapshot.meta
        data = snapshot.data
        size = len(data)
        if isinstance(data, (bytes, bytearray)):
            crc = zlib.crc32(data)
        else:
            crc = 0
            for off in range(0, size, _COPY):
                crc = zlib.crc32(data[off : off + _COPY], crc)
        header = msgpack.packb([m.encode(), size, crc])
        final = os.path.join(self.dir, self._name(m.index, m.term))
        tmp = os.path.join(self.dir, f".tmp-{m.index}-{m.term}")
        try:
            with open(tmp, "wb") as f:
                f.write(_MAGIC)
                f.write(struct.pack(">I", len(header)))
                f.write(header)
                if isinstance(data, (bytes, bytearray)):
                    f.write(data)
                else:
                    check = 0
                    for off in range(0, size, _COPY):
                        chunk = data[off : off + _COPY]
                        check = zlib.crc32(chunk, check)
                        f.write(chunk)
                    if check != crc:  # the source changed between the two passes
                        raise ValueError(f"snapshot {m.index} data changed while it was saved")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk keeps no half-written copy
            raise
        self._fsync_dir()
        self._prune()

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _prune(self) -> None:
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".snap"))
        for name in names[: max(0, len(names) - self.retain)]:
            os.unlink(os.path.join(self.dir, name))

    def available(self) -> list[tuple[int, int]]:
        """(index, term) of every retained snapshot file, newest first."""
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(".snap"):
                with contextlib.suppress(ValueError):
                    index, term = name[:-5].split("-")
                    out.append((int(index), int(term)))
        return sorted(out, reverse=True)

    def load(self, index: int, term: int) -> Snapshot | None:
        """The snapshot, or None when it is missing or fails a check. A damaged file is renamed
        to `*.corrupt` (kept for inspection, out of retention) so the next one can take over."""
        return self._checked(index, term, self._read)

    def load_file(self, index: int, term: int) -> Snapshot | None:
        """As `load`, with the data left in the file (a SnapshotFile) once its checksum was
        verified in chunks: what a server starts from, never holding the data whole."""
        return self._checked(index, term, self._open_checked)

    def _checked(
        self, index: int, term: int, read: Callable[[str], Snapshot | None]
    ) -> Snapshot | None:
        """`read` the snapshot file; a damaged one is set aside as `*.corrupt`."""
        path = os.path.join(self.dir, self._name(index, term))
        if not os.path.exists(path):
            return None
        snap = read(path)
        if snap is None:
            log.error("raft snapshot %s is damaged (checksum or format); set aside", path)
            with contextlib.suppress(OSError):
                os.replace(path, path + ".corrupt")
        return snap

    @staticmethod
    def _open_file(path: str) -> tuple[tuple[Any, int, int], SnapshotFile] | None:
        """The header and the data (left in the file) of a snapshot file; None when the file
        or its header is unreadable."""
        try:
            with open(path, "rb") as f:
                header = _read_header(f)
                if header is None:
                    return None
                offset = f.tell()
            return header, SnapshotFile(path, offset, int(header[1]))
        except (OSError, ValueError, TypeError, struct.error, msgpack.UnpackException):
            return None

    def _open_checked(self, path: str) -> Snapshot | None:
        opened = self._open_file(path)
        if opened is None:
            return None
        (raw_meta, _, crc), data = opened
        try:
            got = 0
            for off in range(0, len(data), _COPY):
                got = zlib.crc32(data[off : off + _COPY], got)
            if got != crc or os.fstat(data._fd).st_size != data._offset + len(data):
                data.close()
                return None
            return Snapshot(SnapshotMeta.decode(raw_meta), data)
        except (OSError, ValueError, TypeError):
            data.close()
            return None

    def open_data(self, index: int, term: int) -> SnapshotFile | None:
        """The data of a saved snapshot, read from its file on demand; None if it is missing
        or its header is unreadable (the caller then keeps the bytes it has)."""
        opened = self._open_file(os.path.join(self.dir, self._name(index, term)))
        if opened is None:
            return None
        data = opened[1]
        if os.fstat(data._fd).st_size < data._offset + len(data):
            data.close()
            return None
        return data

    def _read(self, path: str) -> Snapshot | None:
        try:
            with open(path, "rb") as f:
                header = _read_header(f)
                if header is None:
                    return None
                raw_meta, size, crc = header
                data = f.read(size + 1)
        except (OSError, ValueError, struct.error, msgpack.UnpackException):
            return None
        if len(data) != size or zlib.crc32(data) != crc:
            return None
        return Snapshot(SnapshotMeta.decode(raw_meta), data)

    def close(self) -> None:
        pass
