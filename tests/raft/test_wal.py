"""WALLogStore: the same semantics as the memory store, crash tails, corruption, migration."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from consulpy.raft.errors import StorageError
from consulpy.raft.log_stores import open_log_store
from consulpy.raft.storage import MemoryLogStore, PersistBatch, SQLiteLogStore
from consulpy.raft.types import Entry, EntryKind, HardState, SnapshotMeta
from consulpy.raft.wal import CorruptLog, StorageUnavailable, WALLogStore
from tests.raft.test_storage import CONF, batch_strategy, entries


def segments(d: Path) -> list[Path]:
    return sorted(d.glob("*.seg"))


def reopen(d: Path, **kw: object) -> WALLogStore:
    return WALLogStore(str(d), **kw)  # type: ignore[arg-type]


def test_roundtrip_truncate_install_compact(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = reopen(d)
    store.load()
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 10, 1))])
    store.save([PersistBatch(HardState(2, None, 5), entries(7, 8, 2))])  # overwrite 7..10
    store.close()
    store = reopen(d)
    got = store.load()
    assert got.hard_state == HardState(2, None, 5)
    assert [(e.index, e.term) for e in got.entries] == [(i, 1) for i in range(1, 7)] + [
        (7, 2),
        (8, 2),
    ]
    meta = SnapshotMeta(6, 1, CONF, 1)
    store.save([PersistBatch(local_snapshot=meta, compact_to=4)])
    store.save([PersistBatch(local_snapshot=SnapshotMeta(3, 1, CONF, 1))])  # older: ignored
    store.close()
    store = reopen(d)
    got = store.load()
    assert got.snapshot == meta and got.entries[0].index == 5
    installed = SnapshotMeta(20, 3, CONF, 1)
    store.save([PersistBatch(installed=installed), PersistBatch(entries=entries(21, 22, 3))])
    store.close()
    store = reopen(d)
    got = store.load()
    store.close()
    assert got.snapshot == installed
    assert [e.index for e in got.entries] == [21, 22]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=batch_strategy)
def test_matches_memory_store(tmp_path: Path, ops: list) -> None:
    d = tmp_path / f"wal-{id(ops)}"
    wal = reopen(d, segment_size=4096)
    wal.load()
    mem = MemoryLogStore()
    try:
        for first, n, term, compact_to, install in ops:
            b = PersistBatch(
                hard_state=HardState(term, None, 0),
                entries=entries(first, first + n - 1, term) if n else [],
                installed=SnapshotMeta(first - 1, term, CONF, 1) if install else None,
                compact_to=compact_to,
            )
            wal.save([b])
            mem.save([b])
        wal.close()
        again = reopen(d)
        a, b2 = again.load(), mem.load()
        again.close()
        assert a.hard_state == b2.hard_state
        assert a.snapshot == b2.snapshot
        assert a.entries == b2.entries
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_segments_rotate_and_compaction_deletes_old_ones(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = reopen(d, segment_size=4096)
    store.load()
    big = b"x" * 1000
    for i in range(1, 41):
        store.save([PersistBatch(HardState(1, "a", i - 1), [Entry(1, i, EntryKind.NORMAL, big)])])
    assert len(segments(d)) >= 8
    store.save([PersistBatch(local_snapshot=SnapshotMeta(35, 1, CONF, 1), compact_to=30)])
    assert len(segments(d)) <= 4
    store.close()
    again = reopen(d)
    got = again.load()
    again.close()
    assert got.hard_state == HardState(1, "a", 39)  # the stable state survives the deletion
    assert got.snapshot is not None and got.snapshot.index == 35
    assert [e.index for e in got.entries] == list(range(31, 41))


def _write_some(d: Path, n: int = 20) -> None:
    store = reopen(d)
    store.load()
    for i in range(1, n + 1):
        store.save([PersistBatch(HardState(1, "a", i), entries(i, i, 1))])
    store.close()


def test_cut_tail_after_clean_stop_refuses_to_start_and_recover_drops_it(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    _write_some(d)
    seg = segments(d)[-1]
    os.truncate(seg, seg.stat().st_size - 100)
    with pytest.raises(CorruptLog) as err:
        reopen(d)
    msg = str(err.value)
    assert "entries 17..20" in msg or "entries 18..20" in msg, msg
    assert "consulpy operator raft recover" in msg
    repaired = reopen(d, repair=True)
    assert repaired.lost is not None and repaired.lost[1] == 20
    last = repaired.load().entries[-1].index
    repaired.close()
    again = reopen(d)
    assert again.load().entries[-1].index == last  # opens cleanly now
    again.close()


@pytest.mark.parametrize("mark_interval", [-1.0, 0.0])
def test_torn_write_after_a_crash_is_dropped(tmp_path: Path, mark_interval: float) -> None:
    d = tmp_path / "wal"
    store = reopen(d, mark_interval=mark_interval)  # 0: the mark follows every save
    store.load()
    for i in range(1, 11):
        store.save([PersistBatch(HardState(1, "a", i), entries(i, i, 1))])
    end = store._size
    store._release()  # a crash: no clean close (the segment keeps its preallocated zeros)
    # Then a half-written frame right after the last one, as power loss leaves it.
    seg = segments(d)[-1]
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(b"\x00\x00\x01\x00\xde\xad\xbe\xefpartial")
    again = reopen(d)
    assert [e.index for e in again.load().entries] == list(range(1, 11))
    again.save([PersistBatch(HardState(1, "a", 11), entries(11, 11, 1))])
    again._release()
    again = reopen(d)
    assert again.load().entries[-1].index == 11  # the torn bytes are gone for good
    again.close()
    assert seg.stat().st_size == again._size  # a clean close leaves exactly the data


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    store = reopen(tmp_path / "wal")
    with pytest.raises(StorageError, match="in use by another process"):
        reopen(tmp_path / "wal")
    store.close()
    reopen(tmp_path / "wal").close()


def test_flipped_byte_in_the_middle_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    _write_some(d)
    seg = segments(d)[-1]
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    seg.write_bytes(bytes(raw))
    with pytest.raises(CorruptLog, match="raft log corrupt"):
        reopen(d)


class FailingSync(WALLogStore):
    fail: int = 0  # an errno to raise from the next syncs

    def _sync(self, fd: int) -> None:
        if self.fail:
            raise OSError(self.fail, os.strerror(self.fail))
        super()._sync(fd)


def test_failed_sync_writes_nothing_and_a_retry_succeeds(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = FailingSync(str(d))
    store.load()
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 3, 1))])
    store.fail = errno.EIO
    b = PersistBatch(HardState(1, "a", 3), entries(4, 5, 1))
    with pytest.raises(StorageUnavailable, match="Input/output error"):
        store.save([b])
    size = segments(d)[-1].stat().st_size
    store.fail = 0
    store.save([b])  # the same batch again, as the driver retries it
    assert segments(d)[-1].stat().st_size > size
    store.close()
    again = reopen(d)
    got = again.load()
    again.close()
    assert [e.index for e in got.entries] == [1, 2, 3, 4, 5]
    assert got.hard_state == HardState(1, "a", 3)


def test_sqlite_log_is_migrated_once(tmp_path: Path) -> None:
    sql = SQLiteLogStore(str(tmp_path / "raft.db"))
    meta = SnapshotMeta(3, 1, CONF, 1)
    sql.save([PersistBatch(HardState(2, "a", 5), entries(2, 6, 1), local_snapshot=meta)])
    sql.close()
    store = open_log_store(str(tmp_path))
    got = store.load()
    store.close()
    assert got.hard_state == HardState(2, "a", 5) and got.snapshot == meta
    assert [e.index for e in got.entries] == [2, 3, 4, 5, 6]
    assert not (tmp_path / "raft.db").exists() and (tmp_path / "raft.db.migrated").exists()
    again = open_log_store(str(tmp_path))
    assert isinstance(again, WALLogStore)
    again.close()
    with pytest.raises(Exception, match="sqlite backend cannot read it"):
        open_log_store(str(tmp_path), "sqlite")


def test_damage_in_an_older_segment_is_refused_and_repair_keeps_a_writable_log(
    tmp_path: Path,
) -> None:
    d = tmp_path / "wal"
    store = reopen(d, segment_size=4096)
    store.load()
    for i in range(1, 31):
        store.save(
            [PersistBatch(HardState(1, "a", i), [Entry(1, i, EntryKind.NORMAL, b"x" * 600)])]
        )
    store.close()
    segs = segments(d)
    assert len(segs) >= 3
    raw = bytearray(segs[1].read_bytes())
    raw[0] ^= 0xFF  # the second segment's header
    segs[1].write_bytes(bytes(raw))
    with pytest.raises(CorruptLog, match="damage in the middle of the log"):
        reopen(d, segment_size=4096)
    repaired = reopen(d, segment_size=4096, repair=True)
    last = repaired.load().entries[-1].index
    assert repaired.lost is not None and repaired.lost[1] == 30
    repaired.save([PersistBatch(HardState(2, None, 0), entries(last + 1, last + 2, 2))])
    repaired.close()
    again = reopen(d, segment_size=4096)
    got = again.load()
    again.close()
    assert [e.index for e in got.entries][-3:] == [last, last + 1, last + 2]
    assert got.hard_state == HardState(2, None, 0)


def test_damage_below_the_running_mark_is_refused_after_a_crash(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = reopen(d, mark_interval=0.0)
    store.load()
    for i in range(1, 21):
        store.save([PersistBatch(HardState(1, "a", i), entries(i, i, 1))])
    end = store._size
    store._release()  # kill -9: no clean close, but the mark kept up with the saves
    seg = segments(d)[-1]
    with open(seg, "r+b") as f:
        f.truncate(end - 60)
    with pytest.raises(CorruptLog, match=r"entries \d+\.\.20"):
        reopen(d)


class CountingSyncs(WALLogStore):
    syncs = 0

    def _sync(self, fd: int) -> None:
        self.syncs += 1
        super()._sync(fd)


def test_only_entries_term_and_vote_are_synced_not_a_commit_move(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = CountingSyncs(str(d))
    store.load()
    opened = store.syncs  # the first segment's creation
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 3, 1))])
    synced = store.syncs
    assert synced == opened + 1
    store.save([PersistBatch(HardState(1, "a", 2))])  # the commit moved: written, not synced
    store.save([PersistBatch(HardState(1, "a", 3))])
    assert store.syncs == synced
    store.save([PersistBatch(HardState(2, None, 3))])  # a new term: synced
    assert store.syncs == synced + 1
    store.save([PersistBatch(HardState(2, "b", 3))])  # a vote: synced
    assert store.syncs == synced + 2
    store.close()
    got = reopen(d).load()
    assert got.hard_state == HardState(2, "b", 3)


def test_an_unsynced_commit_frame_torn_by_a_crash_is_discarded(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = reopen(d)
    store.load()
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 3, 1))])
    end = store._size
    store.save([PersistBatch(HardState(1, "a", 3))])
    torn = store._size
    seg = store._segments[-1].path
    store._release()  # a crash: no clean close
    with open(seg, "r+b") as f:  # only part of the unsynced frame reached the disk
        f.seek(end + (torn - end) // 2)
        f.write(bytes(torn - end))
    got = reopen(d).load()
    assert [e.index for e in got.entries] == [1, 2, 3]
    assert got.hard_state.commit == 0


def test_a_failed_sync_also_cuts_the_unsynced_frames_before_it(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = FailingSync(str(d))
    store.load()
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 3, 1))])
    synced_end = store._size
    store.save([PersistBatch(HardState(1, "a", 3))])  # written, not synced
    store.fail = errno.EIO
    with pytest.raises(StorageUnavailable):
        store.save([PersistBatch(None, entries(4, 4, 1))])
    # The kernel may have dropped the commit frame's pages with the failed writeback: it is
    # cut too, so the retry does not land after a hole.
    assert store._size == synced_end
    assert os.path.getsize(store._segments[-1].path) == synced_end
    store.fail = 0
    store.save([PersistBatch(None, entries(4, 4, 1))])
    store.close()
    got = reopen(d).load()
    assert [e.index for e in got.entries] == [1, 2, 3, 4]


def test_rotation_syncs_a_segment_ending_in_unsynced_frames(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    store = CountingSyncs(str(d), segment_size=4096)
    store.load()
    store.save([PersistBatch(HardState(1, "a", 0), entries(1, 1, 1))])
    while store._size < 4096:
        store.save([PersistBatch(HardState(1, "a", store._size))])  # commit moves only
    before = store.syncs
    store.save([PersistBatch(None, entries(2, 2, 1))])  # rotates first
    assert len(store._segments) == 2
    assert store.syncs >= before + 2  # the sealed segment, then the new frame
    store.close()
    got = reopen(d).load()
    assert [e.index for e in got.entries] == [1, 2]
