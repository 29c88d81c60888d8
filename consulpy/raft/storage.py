"""Log + stable store: SQLite on disk (WAL, synchronous=FULL) or in memory for tests.

A PersistBatch is what one Ready (or several merged Readies) asks to make durable. save() applies
a list of them in ONE transaction: that is the group commit, and the reason a crash can never
leave a torn batch behind. The snapshot files live in snapshot_store.py; this store only records
which snapshot is current, in the same transaction that drops the log prefix it replaces.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import msgpack

from consulpy.raft.errors import StorageError
from consulpy.raft.types import Entry, EntryKind, HardState, SnapshotMeta

if TYPE_CHECKING:
    import sqlite3


@dataclass(slots=True)
class PersistBatch:
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)  # entries[0] may overwrite a suffix
    installed: SnapshotMeta | None = None  # snapshot received from a leader: drop the whole log
    local_snapshot: SnapshotMeta | None = None  # snapshot taken here: record it...
    compact_to: int = 0  # ...and drop entries <= compact_to


@dataclass(slots=True)
class StoredState:
    hard_state: HardState
    snapshot: SnapshotMeta | None
    entries: list[Entry]


class LogStore(Protocol):
    def load(self) -> StoredState: ...
    def save(self, batches: list[PersistBatch]) -> None: ...
    def close(self) -> None: ...


class MemoryLogStore:
    """The same semantics as SQLiteLogStore, in a dict; what the simulation crashes and reloads."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: SnapshotMeta | None = None
        self.entries: dict[int, Entry] = {}
        self._lock = threading.Lock()

    def load(self) -> StoredState:
        with self._lock:
            return StoredState(
                self.hard_state, self.snapshot, [self.entries[i] for i in sorted(self.entries)]
            )

    def save(self, batches: list[PersistBatch]) -> None:
        with self._lock:
            for b in batches:
                if b.installed is not None:
                    self.entries.clear()
                    self.snapshot = b.installed
                if b.local_snapshot is not None and (
                    self.snapshot is None or b.local_snapshot.index > self.snapshot.index
                ):
                    self.snapshot = b.local_snapshot
                if b.compact_to:
                    for i in [i for i in self.entries if i <= b.compact_to]:
                        del self.entries[i]
                if b.entries:
                    first = b.entries[0].index
                    for i in [i for i in self.entries if i >= first]:
                        del self.entries[i]
                    for e in b.entries:
                        self.entries[e.index] = e
                if b.hard_state is not None:
                    self.hard_state = b.hard_state

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    idx INTEGER PRIMARY KEY,
    term INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stable (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


class SQLiteLogStore:
    """Log and stable store in one SQLite file. Use from one thread at a time (the driver runs
    every call on its single storage thread)."""

    def __init__(self, path: str) -> None:
        import sqlite3  # only for this (earlier) backend: the WAL's servers do not load it

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load(self) -> StoredState:
        rows = dict(self._db.execute("SELECT key, value FROM stable").fetchall())
        hs = HardState()
        if "hard_state" in rows:
            term, vote, commit = msgpack.unpackb(rows["hard_state"])
            hs = HardState(int(term), vote, int(commit))
        snap = None
        if "snapshot" in rows:
            snap = SnapshotMeta.decode(msgpack.unpackb(rows["snapshot"]))
        try:
            entries = [
                Entry(term, idx, EntryKind(kind), bytes(data))
                for idx, term, kind, data in self._db.execute(
                    "SELECT idx, term, kind, data FROM log ORDER BY idx"
                )
            ]
        except ValueError as exc:
            raise StorageError(f"corrupt raft log in {self.path}: {exc}") from exc
        return StoredState(hs, snap, entries)

    def save(self, batches: list[PersistBatch]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for b in batches:
                if b.installed is not None:
                    db.execute("DELETE FROM log")
                    self._put(db, "snapshot", msgpack.packb(b.installed.encode()))
                if b.local_snapshot is not None:
                    row = db.execute("SELECT value FROM stable WHERE key = 'snapshot'").fetchone()
                    current = SnapshotMeta.decode(msgpack.unpackb(row[0])).index if row else 0
                    if b.local_snapshot.index > current:
                        self._put(db, "snapshot", msgpack.packb(b.local_snapshot.encode()))
                if b.compact_to:
                    db.execute("DELETE FROM log WHERE idx <= ?", (b.compact_to,))
                if b.entries:
                    db.execute("DELETE FROM log WHERE idx >= ?", (b.entries[0].index,))
                    db.executemany(
                        "INSERT INTO log (idx, term, kind, data) VALUES (?, ?, ?, ?)",
                        [(e.index, e.term, int(e.kind), e.data) for e in b.entries],
                    )
                if b.hard_state is not None:
                    hs = b.hard_state
                    self._put(db, "hard_state", msgpack.packb([hs.term, hs.vote, hs.commit]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _put(db: sqlite3.Connection, key: str, value: bytes) -> None:
        db.execute(
            "INSERT INTO stable (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        self._db.close()
