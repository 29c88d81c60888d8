"""Snapshot store: one file per snapshot, written to a temp name, fsynced, then renamed.

File layout: magic, a 4-byte big-endian header length, the msgpack header (metadata, data
length, CRC32 of the data), then the data. A file that fails any check is treated as absent.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Protocol

import msgpack

from consulpy.raft.types import Snapshot, SnapshotMeta

_MAGIC = b"CPYRAFTSNAP1"
_MAX_HEADER = 1 << 20


class SnapshotStore(Protocol):
    def save(self, snapshot: Snapshot) -> None: ...
    def load(self, index: int, term: int) -> Snapshot | None: ...
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

    def close(self) -> None:
        pass


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
        m = snapshot.meta
        header = msgpack.packb([m.encode(), len(snapshot.data), zlib.crc32(snapshot.data)])
        final = os.path.join(self.dir, self._name(m.index, m.term))
        tmp = os.path.join(self.dir, f".tmp-{m.index}-{m.term}")
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(struct.pack(">I", len(header)))
            f.write(header)
            f.write(snapshot.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
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

    def load(self, index: int, term: int) -> Snapshot | None:
        path = os.path.join(self.dir, self._name(index, term))
        try:
            with open(path, "rb") as f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    return None
                (hlen,) = struct.unpack(">I", f.read(4))
                if hlen > _MAX_HEADER:
                    return None
                raw_meta, size, crc = msgpack.unpackb(f.read(hlen))
                data = f.read(size + 1)
        except (OSError, ValueError, struct.error, msgpack.UnpackException):
            return None
        if len(data) != size or zlib.crc32(data) != crc:
            return None
        return Snapshot(SnapshotMeta.decode(raw_meta), data)

    def close(self) -> None:
        pass
