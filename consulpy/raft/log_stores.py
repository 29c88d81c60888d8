"""Choosing and opening the on-disk log store, and moving an old SQLite log into the WAL.

The WAL (wal.py) is the default. A data dir written by an earlier version holds `raft.db`
(SQLite): it is copied into a new WAL directory once, at start, and kept as `raft.db.migrated`
so nobody's data dir breaks and the old file stays available until the operator removes it.
"""

from __future__ import annotations

import logging
import os
import shutil

from consulpy.raft.errors import StorageError
from consulpy.raft.storage import LogStore, PersistBatch, SQLiteLogStore
from consulpy.raft.wal import DEFAULT_SEGMENT_SIZE, WALLogStore

log = logging.getLogger("consulpy.raft")

BACKENDS = ("wal", "sqlite")
SQLITE_NAME = "raft.db"
WAL_NAME = "wal"


def open_log_store(
    storage_dir: str, backend: str = "wal", segment_size: int = DEFAULT_SEGMENT_SIZE
) -> LogStore:
    """Open (creating or migrating as needed) the log store of a Raft storage directory."""
    if backend not in BACKENDS:
        raise ValueError(f"raft: unknown log store backend {backend!r} (one of {BACKENDS})")
    os.makedirs(storage_dir, exist_ok=True)
    sqlite_path = os.path.join(storage_dir, SQLITE_NAME)
    wal_dir = os.path.join(storage_dir, WAL_NAME)
    if backend == "sqlite":
        if os.path.isdir(wal_dir):
            raise StorageError(
                f"raft: {wal_dir} holds the log in the WAL format; the sqlite backend cannot "
                f"read it (set the backend to wal)"
            )
        return SQLiteLogStore(sqlite_path)
    if not os.path.isdir(wal_dir) and os.path.exists(sqlite_path):
        migrate_sqlite(sqlite_path, wal_dir, segment_size)
    return WALLogStore(wal_dir, segment_size)


def migrate_sqlite(sqlite_path: str, wal_dir: str, segment_size: int) -> None:
    """Copy a SQLite log into a new WAL directory, atomically (built aside, then renamed)."""
    old = SQLiteLogStore(sqlite_path)
    try:
        stored = old.load()
    finally:
        old.close()
    tmp = wal_dir + ".migrating"
    shutil.rmtree(tmp, ignore_errors=True)  # a migration cut short by a crash starts over
    store = WALLogStore(tmp, segment_size)
    store.load()
    batches = [PersistBatch(hard_state=stored.hard_state, entries=stored.entries)]
    if stored.snapshot is not None:
        batches.insert(0, PersistBatch(local_snapshot=stored.snapshot))
    store.save(batches)
    store.close()
    os.replace(tmp, wal_dir)
    parent = os.path.dirname(os.path.abspath(wal_dir))
    fd = os.open(parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(sqlite_path + suffix):
            os.replace(sqlite_path + suffix, sqlite_path + ".migrated" + suffix)
    last = stored.entries[-1].index if stored.entries else 0
    log.info(
        "raft: migrated the SQLite log (%d entries, last index %d) to %s; the old file is kept "
        "as %s.migrated",
        len(stored.entries),
        last,
        wal_dir,
        sqlite_path,
    )
