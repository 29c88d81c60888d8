"""Log/stable store (SQLite and memory) and the file snapshot store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consulpy.raft.snapshot_store import (
    FileSnapshotStore,
    MemorySnapshotStore,
    SnapshotFile,
    SnapshotReader,
    SpoolBuffer,
)
from consulpy.raft.storage import MemoryLogStore, PersistBatch, SQLiteLogStore
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    HardState,
    Server,
    Snapshot,
    SnapshotMeta,
)

CONF = Configuration((Server("a", "127.0.0.1:1"),))


def entries(lo: int, hi: int, term: int) -> list[Entry]:
    return [Entry(term, i, EntryKind.NORMAL, b"%d-%d" % (term, i)) for i in range(lo, hi + 1)]


def test_sqlite_roundtrip_truncate_install_compact(tmp_path: Path) -> None:
    path = str(tmp_path / "raft.db")
    store = SQLiteLogStore(path)
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 10, 1))])
    store.save([PersistBatch(HardState(2, None, 5), entries(7, 8, 2))])  # overwrite 7..10
    store.close()
    store = SQLiteLogStore(path)
    got = store.load()
    assert got.hard_state == HardState(2, None, 5)
    assert [(e.index, e.term) for e in got.entries] == [(i, 1) for i in range(1, 7)] + [
        (7, 2),
        (8, 2),
    ]
    meta = SnapshotMeta(6, 1, CONF, 1)
    store.save([PersistBatch(local_snapshot=meta, compact_to=4)])
    got = store.load()
    assert got.snapshot == meta and got.entries[0].index == 5
    store.save([PersistBatch(local_snapshot=SnapshotMeta(3, 1, CONF, 1))])  # older: ignored
    assert store.load().snapshot == meta
    installed = SnapshotMeta(20, 3, CONF, 1)
    store.save([PersistBatch(installed=installed), PersistBatch(entries=entries(21, 22, 3))])
    got = store.load()
    assert got.snapshot == installed
    assert [e.index for e in got.entries] == [21, 22]
    store.close()


def test_sqlite_failed_batch_rolls_back_whole_transaction(tmp_path: Path) -> None:
    store = SQLiteLogStore(str(tmp_path / "raft.db"))
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 3, 1))])
    bad = Entry(1, 5, EntryKind.NORMAL, object())  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - sqlite's own error type for an unbindable value
        store.save(
            [
                PersistBatch(HardState(9, "b", 3), entries(4, 4, 1)),
                PersistBatch(entries=[bad]),
            ]
        )
    got = store.load()
    assert got.hard_state == HardState(1, "a", 0)  # no torn batch: all or nothing
    assert [e.index for e in got.entries] == [1, 2, 3]
    store.close()


def test_sqlite_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteLogStore(str(tmp_path / "raft.db"))
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


batch_strategy = st.lists(
    st.tuples(
        st.integers(1, 30),  # first index of appended entries
        st.integers(0, 5),  # number of entries
        st.integers(1, 4),  # term
        st.integers(0, 30),  # compact_to (0 = none)
        st.booleans(),  # install a snapshot first
    ),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=batch_strategy)
def test_memory_store_matches_sqlite(tmp_path: Path, ops: list) -> None:
    path = tmp_path / f"db-{os.getpid()}-{id(ops)}.db"
    sql = SQLiteLogStore(str(path))
    mem = MemoryLogStore()
    try:
        for first, n, term, compact_to, install in ops:
            b = PersistBatch(
                hard_state=HardState(term, None, 0),
                entries=entries(first, first + n - 1, term) if n else [],
                installed=SnapshotMeta(first - 1, term, CONF, 1) if install else None,
                compact_to=compact_to,
            )
            sql.save([b])
            mem.save([b])
        a, b2 = sql.load(), mem.load()
        assert a.hard_state == b2.hard_state
        assert a.snapshot == b2.snapshot
        assert a.entries == b2.entries
    finally:
        sql.close()
        path.unlink(missing_ok=True)


def test_file_snapshot_store_retains_and_verifies(tmp_path: Path) -> None:
    d = tmp_path / "snaps"
    store = FileSnapshotStore(str(d), retain=2)
    for i in (10, 20, 30):
        store.save(Snapshot(SnapshotMeta(i, 1, CONF, 1), b"data-%d" % i))
    names = sorted(os.listdir(d))
    assert len(names) == 2 and all(n.endswith(".snap") for n in names)
    assert store.load(10, 1) is None
    got = store.load(30, 1)
    assert got is not None and got.data == b"data-30" and got.meta.configuration == CONF
    # Corruption is detected by the checksum.
    path = d / names[-1]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert store.load(30, 1) is None
    # A temp file left by a crash mid-write is removed on open.
    (d / ".tmp-40-1").write_bytes(b"partial")
    FileSnapshotStore(str(d), retain=2)
    assert not (d / ".tmp-40-1").exists()


def test_saved_snapshot_data_is_read_from_its_file_even_after_retention(tmp_path: Path) -> None:
    store = FileSnapshotStore(str(tmp_path / "snaps"), retain=1)
    payload = bytes(range(256)) * 40
    store.save(Snapshot(SnapshotMeta(10, 2, CONF, 1), payload))
    data = store.open_data(10, 2)
    assert isinstance(data, SnapshotFile)
    assert len(data) == len(payload) and bytes(data) == payload
    assert data[0:100] == payload[0:100] and data[5000:99999] == payload[5000:]
    assert data[len(payload) :] == b"" and data[-10:] == payload[-10:]
    # Retention removes the file; the open data stays readable until it is dropped.
    store.save(Snapshot(SnapshotMeta(20, 2, CONF, 1), b"newer"))
    assert store.load(10, 2) is None and data[4096:8192] == payload[4096:8192]
    data.close()
    assert store.open_data(10, 2) is None and store.open_data(99, 1) is None
    assert MemorySnapshotStore().open_data(20, 2) is None


def test_a_snapshot_whose_data_is_a_file_is_copied_in_chunks(tmp_path: Path) -> None:
    """A restore hands Raft an unnamed temporary file: saved byte for byte (several copy
    chunks, a partial last one), with the same checksum as the bytes would have."""
    payload = os.urandom((3 << 20) + 12345)
    with open(tmp_path / "state", "w+b") as f:
        f.write(b"x" * 7 + payload)
        f.flush()
        data = SnapshotFile.from_fd(f.fileno(), 7, len(payload))
    store = FileSnapshotStore(str(tmp_path / "snaps"))
    store.save(Snapshot(SnapshotMeta(10, 2, CONF, 1), data))
    data.close()
    got = store.load(10, 2)
    assert got is not None and got.data == payload
    other = FileSnapshotStore(str(tmp_path / "other"))
    other.save(Snapshot(SnapshotMeta(10, 2, CONF, 1), payload))
    assert (tmp_path / "other" / os.listdir(tmp_path / "other")[0]).read_bytes() == (
        tmp_path / "snaps" / os.listdir(tmp_path / "snaps")[0]
    ).read_bytes()


def test_a_snapshot_is_loaded_as_a_file_after_a_chunked_checksum(tmp_path: Path) -> None:
    store = FileSnapshotStore(str(tmp_path / "snaps"))
    payload = os.urandom((2 << 20) + 3)
    store.save(Snapshot(SnapshotMeta(10, 2, CONF, 1), payload))
    got = store.load_file(10, 2)
    assert got is not None and isinstance(got.data, SnapshotFile)
    assert got.meta.index == 10 and bytes(got.data) == payload
    reader = SnapshotReader(got.data)
    assert reader.read(5) + reader.read(-1) == payload and reader.read(1) == b""
    got.data.close()
    [name] = os.listdir(tmp_path / "snaps")
    path = tmp_path / "snaps" / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    assert store.load_file(10, 2) is None  # damaged: set aside, as `load` does
    assert os.listdir(tmp_path / "snaps") == [name + ".corrupt"]
    assert store.load_file(99, 1) is None


def test_a_spool_buffer_is_written_in_place_and_read_back(tmp_path: Path) -> None:
    buf = SpoolBuffer(10 << 20, str(tmp_path))
    assert os.listdir(tmp_path) == []  # unnamed: nothing to clean up after a crash
    assert len(buf) == 10 << 20
    chunk = os.urandom(1 << 20)
    buf[0 : 1 << 20] = chunk
    buf[(9 << 20) : (10 << 20)] = chunk
    assert buf[0:16] == chunk[:16] and buf[(10 << 20) - 16 :] == chunk[-16:]
    assert buf[(5 << 20) : (5 << 20) + 4] == b"\0\0\0\0"
    with pytest.raises(ValueError):
        buf[0:3] = b"ab"
    buf.close()


def test_memory_snapshot_store_retention() -> None:
    store = MemorySnapshotStore(retain=1)
    store.save(Snapshot(SnapshotMeta(1, 1, CONF, 1), b"a"))
    store.save(Snapshot(SnapshotMeta(2, 1, CONF, 1), b"b"))
    assert store.load(1, 1) is None and store.load(2, 1) is not None
