"""WALLogStore: the Raft log and stable store as checksummed, append-only segment files.

Why not SQLite: a write there costs a B-tree update plus a WAL frame plus a checkpoint now and
then; here a save() is one write() of one frame and one fdatasync (none when the frame
only moves the commit index, see _needs_sync). That frame holds every batch
the storage thread merged (group commit), so it is atomic: a torn frame is wholly discarded.

Layout of the directory (see docs/adr/0007-wal-log-store.md):
- `NNNNNNNNNNNNNNNN.seg`: a header (magic, sequence number, CRC32) then frames; each frame is a
  4-byte length, a 4-byte CRC32 of the payload, then the msgpack payload: a list of operations.
  Every segment starts with a state frame (term, vote, commit, snapshot, compaction point), so a
  prefix of segments can be deleted after compaction without losing the stable state.
- `meta`: the durable mark D: this log has held entries through index D on disk, so this server
  may have acknowledged them. It is written on a clean close, at each segment rotation and at
  most every `mark_interval` seconds while writing, and lowered (before the write) when a leader
  truncates a suffix below it. A log that reads back
  shorter than D has lost acknowledged entries: the store refuses to open (see `repair`).
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import logging
import mmap
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass, field

import msgpack

from consulpy.raft.errors import StorageError, StorageUnavailable
from consulpy.raft.storage import PersistBatch, StoredState
from consulpy.raft.types import Entry, EntryKind, HardState, SnapshotMeta

log = logging.getLogger("consulpy.raft.wal")

_MAGIC = b"CPYWAL01"
_SEG_HEADER = struct.Struct(">8sQI")  # magic, sequence, crc32 of the first 16 bytes
_FRAME = struct.Struct(">II")  # payload length, crc32 of the payload
_ZERO_HEADER = bytes(_FRAME.size)
_META_MAGIC = b"CPYWALMETA1"

# Operation codes inside a frame's payload.
_HARD, _ENTRIES, _INSTALLED, _LOCAL_SNAP, _COMPACT, _STATE = range(6)

DEFAULT_SEGMENT_SIZE = 64 << 20
DEFAULT_MARK_INTERVAL = 5.0


class CorruptLog(StorageError):
    """The log on disk is damaged where this server may have acknowledged entries."""


@dataclass(slots=True)
class _Segment:
    seq: int
    path: str
    max_index: int = 0  # highest entry index ever written into it
    end: int = 0  # where its last intact frame ends
    dead: bool = False  # every entry in it was superseded by an installed snapshot


@dataclass(slots=True)
class _Replay:
    """Applies operations in log order; the same semantics as MemoryLogStore.save."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: SnapshotMeta | None = None
    base: int = 0  # entries <= base are compacted
    entries: list[Entry] = field(default_factory=list)

    last_entry: int = 0  # index of the last entry still in the log (0: none)

    @property
    def last_index(self) -> int:
        """The last index this log holds, in an entry or covered by the snapshot."""
        return max(self.last_entry, self.snapshot.index if self.snapshot else 0)

    def _drop_through(self, index: int) -> None:
        es = self.entries
        if es:
            del es[: bisect.bisect_right(es, index, key=_index)]
        if self.last_entry <= index:
            self.last_entry = 0

    def apply(self, op: list, keep_entries: bool = True) -> int:
        """Apply one operation; returns the highest entry index it wrote (0 if none).

        Without keep_entries only the bookkeeping is updated (what save() needs: the entries
        themselves live in the Raft core's memory)."""
        code = op[0]
        if code == _HARD:
            self.hard_state = HardState(int(op[1]), op[2], int(op[3]))
        elif code == _ENTRIES:
            raw = op[1]
            if not raw:
                return 0
            if keep_entries:
                es = self.entries
                first = int(raw[0][0])
                if es and first <= es[-1].index:
                    del es[bisect.bisect_left(es, first, key=_index) :]
                es.extend(Entry(int(t), int(i), EntryKind(int(k)), bytes(d)) for i, t, k, d in raw)
            self.last_entry = int(raw[-1][0])
            return self.last_entry
        elif code == _INSTALLED:
            self.entries = []
            self.last_entry = 0
            self.snapshot = SnapshotMeta.decode(op[1])
        elif code == _LOCAL_SNAP:
            meta = SnapshotMeta.decode(op[1])
            if self.snapshot is None or meta.index > self.snapshot.index:
                self.snapshot = meta
        elif code == _COMPACT:
            self.base = max(self.base, int(op[1]))
            self._drop_through(int(op[1]))
        elif code == _STATE:
            self.hard_state = HardState(int(op[1]), op[2], int(op[3]))
            self.snapshot = SnapshotMeta.decode(op[4]) if op[4] is not None else None
            self.base = max(self.base, int(op[5]))
        else:
            raise ValueError(f"unknown operation {code!r}")
        return 0


@dataclass(slots=True)
class Damage:
    """Where reading stopped: a segment, the byte offset of the first bad frame, and why."""

    path: str
    offset: int
    reason: str
    tail: bool  # nothing readable follows it: a torn last write, not damage in the middle


def _index(e: Entry) -> int:
    return e.index


def _encode_batches(batches: list[PersistBatch]) -> list[list]:
    ops: list[list] = []
    for b in batches:
        if b.installed is not None:
            ops.append([_INSTALLED, b.installed.encode()])
        if b.local_snapshot is not None:
            ops.append([_LOCAL_SNAP, b.local_snapshot.encode()])
        if b.compact_to:
            ops.append([_COMPACT, b.compact_to])
        if b.entries:
            ops.append([_ENTRIES, [[e.index, e.term, int(e.kind), e.data] for e in b.entries]])
        if b.hard_state is not None:
            hs = b.hard_state
            ops.append([_HARD, hs.term, hs.vote, hs.commit])
    return ops


def _needs_sync(batches: list[PersistBatch], durable: HardState) -> bool:
    """False when the batches only move the commit index: like etcd's WAL (raft.MustSync),
    that is written but not synced. Raft never needs the commit index durable (a restarted
    server learns it again from the leader); what it acknowledged was synced before, and the
    next synced frame makes this one durable too (a crash before that leaves at most a torn
    frame at the tail, which opening discards)."""
    term, vote = durable.term, durable.vote
    for b in batches:
        if b.entries or b.installed or b.local_snapshot or b.compact_to:
            return True
        hs = b.hard_state
        if hs is not None:
            if hs.term != term or hs.vote != vote:
                return True
            term, vote = hs.term, hs.vote
    return False


def _frame(ops: list[list]) -> bytes:
    payload = msgpack.packb(ops)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WALLogStore:
    """Log and stable store in segment files. Used from one thread at a time (the driver's
    storage thread), like SQLiteLogStore."""

    def __init__(
        self,
        directory: str,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        *,
        repair: bool = False,
        mark_interval: float = DEFAULT_MARK_INTERVAL,
    ) -> None:
        self.dir = directory
        self.segment_size = max(4096, segment_size)
        self.repair = repair
        # Seconds between durable-mark updates while writing (negative: only at rotation and
        # close). Each update is one small file replace plus fsyncs on the storage thread.
        self.mark_interval = mark_interval
        self._mark_time = time.monotonic()
        os.makedirs(directory, exist_ok=True)
        # One process at a time: a second agent (or `operator raft recover`) on the same data
        # dir would interleave frames.
        self._lock_fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StorageError(
                f"raft log {directory} is in use by another process (is an agent running?)"
            ) from None
        self._segments: list[_Segment] = []
        self._fd = -1
        self._size = 0  # bytes in the active (last) segment
        # Where the active segment's frames written but not yet synced begin (None: all synced).
        self._unsynced_from: int | None = None
        self._state = _Replay()
        self._durable_mark = 0
        self._loaded: StoredState | None = None
        self.damage: Damage | None = None
        self.lost: tuple[int, int] | None = None  # (first, last) acknowledged indexes dropped
        try:
            self._open()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    # ------------------------------------------------------------------ opening

    def _seg_path(self, seq: int) -> str:
        return os.path.join(self.dir, f"{seq:016d}.seg")

    def _open(self) -> None:
        for name in os.listdir(self.dir):
            if name.startswith(".tmp-"):
                os.unlink(os.path.join(self.dir, name))  # a rotation or meta write cut short
        self._durable_mark = self._read_meta()
        seqs = sorted(int(n[:-4]) for n in os.listdir(self.dir) if n.endswith(".seg"))
        state = self._state
        for pos, seq in enumerate(seqs):
            seg = _Segment(seq, self._seg_path(seq))
            self._segments.append(seg)
            last_segment = pos == len(seqs) - 1
            good_end, damage = self._replay_segment(seg, state)
            seg.end = good_end
            if damage is None:
                continue
            if not last_segment:
                damage.tail = False
            self._handle_damage(damage, good_end, last_segment)
            if not last_segment:
                # repair mode: everything after the damage is dropped with it
                for later in seqs[pos + 1 :]:
                    os.unlink(self._seg_path(later))
                break
        if self._durable_mark > state.last_index:
            self._refuse_or_repair(
                Damage(self._segments[-1].path if self._segments else self.dir, -1, "", True),
                f"the log ends at index {state.last_index}",
            )
        if not self._segments:
            self._rotate()
        else:
            self._size = self._segments[-1].end
            self._fd = os.open(self._segments[-1].path, os.O_RDWR)
            self._preallocate(self._fd)
        if self.lost is not None:
            self._write_meta(state.last_index)
        self._loaded = StoredState(state.hard_state, state.snapshot, state.entries)
        state.entries = []  # from now on the Raft core holds them; this keeps the bookkeeping

    def _replay_segment(self, seg: _Segment, state: _Replay) -> tuple[int, Damage | None]:
        """Apply every intact frame; returns the end of the last good frame and any damage."""
        with open(seg.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _SEG_HEADER.size:
                return 0, Damage(seg.path, 0, "truncated segment header", True)
            # mmap: a preallocated segment is mostly zeros that need not be copied in.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as raw:
                return self._replay_frames(seg, state, raw, size)

    def _replay_frames(
        self, seg: _Segment, state: _Replay, raw: mmap.mmap, size: int
    ) -> tuple[int, Damage | None]:
        magic, seq, crc = _SEG_HEADER.unpack_from(raw)
        if magic != _MAGIC or zlib.crc32(raw[:16]) != crc or seq != seg.seq:
            return 0, Damage(seg.path, 0, "bad segment header", False)
        off = _SEG_HEADER.size
        while off < size:
            if off + _FRAME.size > size:
                if raw[off:size].count(0) == size - off:
                    return off, None
                return off, Damage(seg.path, off, "truncated frame header", True)
            length, crc = _FRAME.unpack_from(raw, off)
            if length == 0 and crc == 0:  # the preallocated zeros after the last frame
                if _any_frame(raw, off + _FRAME.size, size):
                    return off, Damage(seg.path, off, "zeroed bytes before more frames", False)
                return off, None
            end = off + _FRAME.size + length
            if end > size:
                return off, Damage(seg.path, off, f"frame of {length} bytes cut short", True)
            payload = raw[off + _FRAME.size : end]
            if zlib.crc32(payload) != crc:
                tail = not _any_frame(raw, end, size)
                return off, Damage(seg.path, off, "checksum mismatch", tail)
            try:
                ops = msgpack.unpackb(payload)
                for op in ops:
                    top = state.apply(op)
                    if top:
                        seg.max_index = max(seg.max_index, top)
                    elif op[0] == _INSTALLED:
                        for s in self._segments:
                            if s is not seg:
                                s.dead = True
            except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
                return off, Damage(seg.path, off, f"undecodable frame ({exc})", False)
            off = end
        return off, None

    def _handle_damage(self, damage: Damage, good_end: int, last_segment: bool) -> None:
        state = self._state
        where = f"{damage.path} at byte {damage.offset} ({damage.reason})"
        if damage.tail and last_segment and state.last_index >= self._durable_mark:
            # A write cut short by a crash: it never completed its fsync, so it was never
            # acknowledged. Drop it.
            log.warning(
                "raft log: discarding a torn write in %s; the log ends at index %d, every "
                "acknowledged entry (through %d) is intact",
                where,
                state.last_index,
                self._durable_mark,
            )
            self._cut(damage.path, good_end)
            return
        reason = (
            "damage in the middle of the log"
            if not damage.tail or not last_segment
            else f"the readable log ends at index {state.last_index}"
        )
        self._refuse_or_repair(damage, reason)
        self._cut(damage.path, good_end)

    def _cut(self, path: str, good_end: int) -> None:
        """Drop a segment's bytes from good_end on (the whole file if its header is bad)."""
        if good_end == 0:
            os.unlink(path)
            self._segments.pop()
            _fsync_dir(self.dir)
        else:
            self._truncate_file(path, good_end)

    def _refuse_or_repair(self, damage: Damage, reason: str) -> None:
        first = self._state.last_index + 1
        last = max(self._durable_mark, first)
        where = f"{damage.path}" + (
            f" at byte {damage.offset} ({damage.reason})" if damage.offset >= 0 else ""
        )
        if not self.repair:
            raise CorruptLog(
                f"raft log corrupt: {where}: {reason}, but this server had written entries "
                f"through index {self._durable_mark} and may have acknowledged them; entries "
                f"{first}..{last} (and anything after them) are unreadable. Refusing to start. "
                f"If the other servers hold a quorum, run `consulpy operator raft recover "
                f"-data-dir <data_dir>` to drop the damaged part; this server then catches up "
                f"from the leader."
            )
        self.damage = damage
        self.lost = (first, last) if self._durable_mark >= first else None
        log.warning("raft log repair: dropping %s (%s)", where, reason)

    @staticmethod
    def _truncate_file(path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ meta (durable mark)

    def _read_meta(self) -> int:
        path = os.path.join(self.dir, "meta")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return 0
        n = len(_META_MAGIC)
        if len(raw) != n + 12 or raw[:n] != _META_MAGIC:
            raise CorruptLog(f"raft log: unreadable {path}")
        mark, crc = struct.unpack(">QI", raw[n:])
        if zlib.crc32(raw[: n + 8]) != crc:
            raise CorruptLog(f"raft log: checksum mismatch in {path}")
        return int(mark)

    def _write_meta(self, mark: int) -> None:
        body = _META_MAGIC + struct.pack(">Q", mark)
        raw = body + struct.pack(">I", zlib.crc32(body))
        tmp = os.path.join(self.dir, ".tmp-meta")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, raw)
            self._sync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self.dir, "meta"))
        _fsync_dir(self.dir)
        self._durable_mark = mark

    # ------------------------------------------------------------------ writing

    def _sync(self, fd: int) -> None:
        """fdatasync; the one place tests inject I/O errors."""
        os.fdatasync(fd)

    def _sync_or_cut(self, start: int) -> None:
        """fdatasync the active segment. If that fails the kernel may have dropped the dirty
        pages, unsynced earlier frames included: cut them all, so no retry lands after a hole
        (they only moved the commit index; the retry writes this frame again from memory)."""
        try:
            self._sync(self._fd)
        except OSError:
            self._cut_back(start if self._unsynced_from is None else self._unsynced_from)
            raise
        self._unsynced_from = None

    def _cut_back(self, offset: int) -> None:
        """No half frame stays behind for a retry with other content to land on."""
        with _suppress_os():
            os.ftruncate(self._fd, offset)
        self._size = min(self._size, offset)
        self._unsynced_from = None

    def _rotate(self) -> None:
        """Seal the active segment and start the next one with a full state frame."""
        if self._fd >= 0 and self._unsynced_from is not None:
            self._sync_or_cut(self._size)  # a sealed segment ends in synced frames only
        seq = self._segments[-1].seq + 1 if self._segments else 1
        st = self._state
        hs = st.hard_state
        header = _SEG_HEADER.pack(_MAGIC, seq, 0)[:16]
        header += struct.pack(">I", zlib.crc32(header))
        frame = _frame(
            [
                [
                    _STATE,
                    hs.term,
                    hs.vote,
                    hs.commit,
                    st.snapshot.encode() if st.snapshot else None,
                    st.base,
                ]
            ]
        )
        tmp = os.path.join(self.dir, f".tmp-{seq}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, header + frame)
            self._preallocate(fd)
            self._sync(fd)
            final = self._seg_path(seq)
            os.replace(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            os.close(fd)
            with _suppress_os():
                os.unlink(tmp)
            raise
        if self._fd >= 0:
            with _suppress_os():  # the sealed segment gives back its unused preallocation
                os.ftruncate(self._fd, self._size)
            os.close(self._fd)
        self._fd = fd
        self._segments.append(_Segment(seq, final))
        self._size = len(header) + len(frame)
        if len(self._segments) > 1:
            self._write_meta(st.last_index)  # everything before this segment is durable

    def _preallocate(self, fd: int) -> None:
        """Reserve the whole segment up front: appends then overwrite allocated space, so an
        fdatasync does not also have to grow the file. Best effort: a full or unsupporting
        filesystem just appends."""
        try:
            if os.fstat(fd).st_size < self.segment_size:
                os.posix_fallocate(fd, 0, self.segment_size)
        except OSError:
            pass

    def _drop_old_segments(self) -> None:
        base = self._state.base
        while len(self._segments) > 1:
            seg = self._segments[0]
            if not (seg.dead or seg.max_index <= base):
                break
            try:
                os.unlink(seg.path)
            except FileNotFoundError:
                pass
            except OSError as exc:  # harmless: retried at the next compaction
                log.warning("raft log: could not delete %s: %s", seg.path, exc)
                break
            self._segments.pop(0)

    def load(self) -> StoredState:
        """What the directory held when opened (the driver loads once, at start)."""
        if self._loaded is None:
            raise StorageError("WALLogStore.load() is only valid once, right after opening")
        loaded, self._loaded = self._loaded, None
        return loaded

    def save(self, batches: list[PersistBatch]) -> None:
        ops = _encode_batches(batches)
        if not ops:
            return
        if self._fd < 0:
            raise StorageError("raft log store is closed")
        st = self._state
        try:
            if self._size >= self.segment_size:
                self._rotate()
            # The lowest point this frame takes the log back to; the durable mark must not
            # claim more than that before the frame exists (a crash in between would then
            # look like lost entries).
            low = st.last_index
            for b in batches:
                if b.installed is not None:
                    low = min(low, b.installed.index)
                if b.entries:
                    low = min(low, b.entries[0].index - 1)
            if low < self._durable_mark:
                self._write_meta(low)
            data = _frame(ops)
            start = self._size
            try:
                _pwrite_all(self._fd, data, start)
            except OSError:
                self._cut_back(start)
                raise
            if _needs_sync(batches, st.hard_state):
                self._sync_or_cut(start)
            elif self._unsynced_from is None:
                self._unsynced_from = start
        except OSError as exc:
            raise StorageUnavailable(
                f"raft log write failed in {self.dir}: {os.strerror(exc.errno or errno.EIO)}"
            ) from exc
        self._size += len(data)
        seg = self._segments[-1]
        compacted = installed = False
        for op in ops:
            top = st.apply(op, keep_entries=False)
            if top:
                seg.max_index = max(seg.max_index, top)
            elif op[0] == _INSTALLED:
                installed = True
                for s in self._segments[:-1]:
                    s.dead = True
            elif op[0] == _COMPACT:
                compacted = True
        if compacted or installed:
            self._drop_old_segments()
        if self.mark_interval >= 0 and st.last_index > self._durable_mark:
            now = time.monotonic()
            if now - self._mark_time >= self.mark_interval:
                # Off the write's critical path in all but one save per interval: it narrows
                # the window in which a damaged tail cannot be told from a torn write.
                self._mark_time = now
                try:
                    self._write_meta(st.last_index)
                except OSError as exc:  # the frame is durable; the mark can wait
                    log.warning("raft log: could not update the durable mark: %s", exc)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            # Give back the preallocation: a stopped server's log is exactly its data.
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
            self._write_meta(self._state.last_index)
        except OSError as exc:
            log.warning("raft log: could not record the clean close: %s", exc)
        finally:
            self._release()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


_NONZERO = re.compile(rb"[^\x00]")


def _any_frame(raw: mmap.mmap, start: int, size: int) -> bool:
    """Does an intact frame follow `start`? Then the damage is not a torn tail."""
    limit = min(size, start + (1 << 20))  # a torn write is one frame; look no further
    pos = start
    while pos + _FRAME.size <= limit:
        if raw[pos : pos + _FRAME.size] == _ZERO_HEADER:
            # A zero run holds no frame (lengths are > 0): skip to just before its end.
            found = _NONZERO.search(raw, pos, limit)
            if found is None:
                return False
            pos = max(pos + 1, found.start() - _FRAME.size + 1)
            continue
        length, crc = _FRAME.unpack_from(raw, pos)
        end = pos + _FRAME.size + length
        if length > 0 and end <= size and zlib.crc32(raw[pos + _FRAME.size : end]) == crc:
            return True
        pos += 1
    return False
