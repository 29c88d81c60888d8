"""The KV table: entries, tombstones, lock bookkeeping and lock-delays.

Entries are kept in a sorted map so prefix reads (recursive gets, key listings with a
separator) walk only the keys under the prefix. Rows are treated as immutable: a change
replaces the row object, which makes a snapshot a cheap shallow copy.

Tombstones remember the index at which a key was deleted, so that the index reported for a
prefix never goes backwards when its newest key is deleted (blocking watchers rely on it).

Each entry is kept as one packed `bytes` row (indexes, flags, session, value), not as a
`KVEntry` object with its index integers beside the value: about 80 bytes less per key (a
100,000-key store holds 8 MiB less, issue 21 goal 3). Reads build the `KVEntry` they return.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedDict

from consulpy.state.txn import WriteTxn

# Consul caps the lock-delay it enforces at 60 s, whatever the session asked for.
MAX_LOCK_DELAY_NS = 60 * 1_000_000_000

# Why an acquire did not happen.
LOCK_HELD = "held"
LOCK_DELAYED = "delayed"


@dataclass(slots=True)
class KVEntry:
    key: str
    value: bytes
    flags: int
    session: str
    lock_index: int
    create_index: int
    modify_index: int

    def same_content(self, other: KVEntry) -> bool:
        return (
            self.value == other.value
            and self.flags == other.flags
            and self.session == other.session
            and self.lock_index == other.lock_index
        )

    def to_wire(self, with_value: bool = True) -> dict[str, Any]:
        """The DirEntry shape (Value as raw bytes; the HTTP layer base64-encodes it)."""
        out: dict[str, Any] = {
            "LockIndex": self.lock_index,
            "Key": self.key,
            "Flags": self.flags,
            "Value": (self.value or None) if with_value else None,
        }
        if self.session:
            out["Session"] = self.session
        out["CreateIndex"] = self.create_index
        out["ModifyIndex"] = self.modify_index
        return out

    def dump(self) -> list[Any]:
        return [
            self.key,
            self.value,
            self.flags,
            self.session,
            self.lock_index,
            self.create_index,
            self.modify_index,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> KVEntry:
        return cls(*row)


# A row: create index, modify index, lock index, flags (uint64 each), the session's length
# (uint16), the session (UTF-8), then the value.
_HEAD = struct.Struct("<QQQQH")
_HEAD_SIZE = _HEAD.size


def pack_row(entry: KVEntry) -> bytes:
    session = entry.session.encode()
    return (
        _HEAD.pack(
            entry.create_index, entry.modify_index, entry.lock_index, entry.flags, len(session)
        )
        + session
        + entry.value
    )


def unpack_row(key: str, row: bytes) -> KVEntry:
    create, modify, lock, flags, size = _HEAD.unpack_from(row)
    if size:
        end = _HEAD_SIZE + size
        return KVEntry(key, row[end:], flags, row[_HEAD_SIZE:end].decode(), lock, create, modify)
    return KVEntry(key, row[_HEAD_SIZE:], flags, "", lock, create, modify)


def row_session(row: bytes) -> str:
    size = _HEAD.unpack_from(row)[4]
    return row[_HEAD_SIZE : _HEAD_SIZE + size].decode() if size else ""


def row_modify_index(row: bytes) -> int:
    return _HEAD.unpack_from(row)[1]


class FrozenRows(list):  # type: ignore[type-arg]
    """A point-in-time list of (key, row) pairs whose items dump as `KVEntry.dump` does (the
    snapshot writer packs each through `dump_item`, one at a time)."""

    __slots__ = ()

    @staticmethod
    def dump_item(item: tuple[str, bytes]) -> list[Any]:
        return unpack_row(item[0], item[1]).dump()


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: unbounded)."""
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1)
            return "".join(chars)
        chars.pop()
    return None


class KVTable:
    """KV rows plus everything derived from them. Mutated only through a WriteTxn."""

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()  # key -> packed row (pack_row)
        self.tombstones: SortedDict = SortedDict()  # key -> index at which it was deleted
        self.held: dict[str, set[str]] = {}  # session id -> keys it holds (derived)
        self.lock_delays: dict[str, float] = {}  # key -> unix time until which acquire fails

    # ----------------------------------------------------------------- reads
    def get(self, key: str) -> KVEntry | None:
        row = self.entries.get(key)
        return unpack_row(key, row) if row is not None else None

    def _irange(self, mapping: SortedDict, prefix: str):  # type: ignore[no-untyped-def]
        if not prefix:
            return iter(mapping)
        end = prefix_end(prefix)
        return mapping.irange(prefix, end, inclusive=(True, False))

    def list(self, prefix: str) -> list[KVEntry]:
        entries = self.entries
        return [unpack_row(k, entries[k]) for k in self._irange(entries, prefix)]

    def key_indexes(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, modify index) of every entry under `prefix`, in key order, without building
        the entries (a key listing needs no values)."""
        entries = self.entries
        for key in self._irange(entries, prefix):
            yield key, row_modify_index(entries[key])

    def keys_under(self, prefix: str) -> list[str]:
        return list(self._irange(self.entries, prefix))

    def tombstone_max(self, prefix: str) -> int:
        stones = self.tombstones
        best = 0
        for key in self._irange(stones, prefix):
            idx = stones[key]
            if idx > best:
                best = idx
        return best

    def lock_delay_until(self, key: str) -> float:
        return self.lock_delays.get(key, 0.0)

    # ---------------------------------------------------------------- writes
    def _put(self, txn: WriteTxn, entry: KVEntry) -> None:
        key = entry.key
        old = self.entries.get(key)
        old_session = row_session(old) if old is not None else ""
        stone = self.tombstones.get(key)
        self.entries[key] = pack_row(entry)
        if stone is not None:
            del self.tombstones[key]
        if old_session and old_session != entry.session:
            self._release_holding(old_session, key)
        if entry.session and (old is None or old_session != entry.session):
            self.held.setdefault(entry.session, set()).add(key)

        def undo() -> None:
            if entry.session and (old is None or old_session != entry.session):
                self._release_holding(entry.session, key)
            if old is None:
                del self.entries[key]
            else:
                self.entries[key] = old
                if old_session and old_session != entry.session:
                    self.held.setdefault(old_session, set()).add(key)
            if stone is not None:
                self.tombstones[key] = stone

        txn.on_undo(undo)
        txn.touch_kv(key)

    def _release_holding(self, session: str, key: str) -> None:
        keys = self.held.get(session)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.held[session]

    def _delete(self, txn: WriteTxn, key: str) -> bool:
        old = self.entries.get(key)
        if old is None:
            return False
        old_session = row_session(old)
        prev_stone = self.tombstones.get(key)
        del self.entries[key]
        self.tombstones[key] = txn.index
        if old_session:
            self._release_holding(old_session, key)

        def undo() -> None:
            self.entries[key] = old
            if prev_stone is None:
                del self.tombstones[key]
            else:
                self.tombstones[key] = prev_stone
            if old_session:
                self.held.setdefault(old_session, set()).add(key)

        txn.on_undo(undo)
        txn.touch_kv(key)
        txn.tables.add("tombstones")
        return True

    def set_lock_delay(self, txn: WriteTxn, key: str, until: float) -> None:
        prev = self.lock_delays.get(key)
        self.lock_delays[key] = until

        def undo() -> None:
            if prev is None:
                self.lock_delays.pop(key, None)
            else:
                self.lock_delays[key] = prev

        txn.on_undo(undo)

    def expire_lock_delays(self, now: float) -> None:
        """Drop lock-delays that ended before `now` (housekeeping; no effect on results)."""
        stale = [k for k, until in self.lock_delays.items() if until <= now]
        for key in stale:
            del self.lock_delays[key]

    # ------------------------------------------------------- Consul's verbs
    # Each returns the resulting entry (or None) and, for conditional verbs, whether it applied.

    def set(self, txn: WriteTxn, key: str, value: bytes, flags: int) -> KVEntry:
        """Unconditional write. Keeps the current lock holder; LockIndex comes from the request
        (0), exactly as Consul's plain PUT does."""
        old = self.get(key)
        entry = KVEntry(
            key,
            value,
            flags,
            old.session if old is not None else "",
            0,
            old.create_index if old is not None else txn.index,
            txn.index,
        )
        if old is not None and old.same_content(entry):
            return old
        self._put(txn, entry)
        return entry

    def cas(self, txn: WriteTxn, key: str, value: bytes, flags: int, index: int) -> KVEntry | None:
        old = self.entries.get(key)
        if index == 0:
            if old is not None:
                return None
        elif old is None or row_modify_index(old) != index:
            return None
        return self.set(txn, key, value, flags)

    def lock(
        self, txn: WriteTxn, key: str, value: bytes, flags: int, session: str, now: float
    ) -> tuple[KVEntry | None, str | None]:
        """Acquire for a session the caller has checked exists. Returns (entry, None) on
        success, else (None, LOCK_HELD or LOCK_DELAYED)."""
        if self.lock_delays.get(key, 0.0) > now:
            return None, LOCK_DELAYED
        old = self.get(key)
        if old is None:
            lock_index, create_index = 1, txn.index
        elif old.session == session:
            lock_index, create_index = old.lock_index, old.create_index
        elif old.session:
            return None, LOCK_HELD
        else:
            lock_index, create_index = old.lock_index + 1, old.create_index
        entry = KVEntry(key, value, flags, session, lock_index, create_index, txn.index)
        if old is not None and old.same_content(entry):
            return old, None
        self._put(txn, entry)
        return entry, None

    def unlock(
        self, txn: WriteTxn, key: str, value: bytes, flags: int, session: str
    ) -> KVEntry | None:
        """Release: only the holder may; the request's value and flags replace the stored ones."""
        old = self.get(key)
        if old is None or old.session != session:
            return None
        entry = KVEntry(key, value, flags, "", old.lock_index, old.create_index, txn.index)
        self._put(txn, entry)
        return entry

    def delete(self, txn: WriteTxn, key: str) -> None:
        self._delete(txn, key)

    def delete_cas(self, txn: WriteTxn, key: str, index: int) -> bool:
        old = self.entries.get(key)
        if old is None:
            # Consul's quirk: a CAS delete of a missing key succeeds.
            return True
        if row_modify_index(old) != index:
            return False
        self._delete(txn, key)
        return True

    def delete_tree(self, txn: WriteTxn, prefix: str) -> int:
        keys = self.keys_under(prefix)
        for key in keys:
            self._delete(txn, key)
        return len(keys)

    def reap_tombstones(self, txn: WriteTxn, upto: int) -> int:
        reaped = [(k, i) for k, i in self.tombstones.items() if i <= upto]
        for key, _ in reaped:
            del self.tombstones[key]

        def undo() -> None:
            for key, idx in reaped:
                self.tombstones[key] = idx

        if reaped:
            txn.on_undo(undo)
            txn.tables.add("tombstones")
        return len(reaped)

    # -------------------------------------------------------------- snapshot
    def dump(self) -> dict[str, Any]:
        return {
            "entries": [unpack_row(k, r).dump() for k, r in self.entries.items()],
            "tombstones": list(self.tombstones.items()),
            "lock_delays": list(self.lock_delays.items()),
        }

    def load(self, data: dict[str, Any]) -> None:
        self.load_rows((KVEntry.load(row) for row in data["entries"]), data["tombstones"], data)

    def load_rows(
        self, entries: Iterable[KVEntry], tombstones: Iterable[Any], rest: dict[str, Any]
    ) -> None:
        """Load from rows already converted (a streamed snapshot converts them one by one)."""
        held: dict[str, set[str]] = {}

        def rows() -> Iterator[tuple[str, bytes]]:
            for entry in entries:
                if entry.session:
                    held.setdefault(entry.session, set()).add(entry.key)
                yield entry.key, pack_row(entry)

        self.entries = SortedDict(rows())
        self.held = held
        self.tombstones = SortedDict((k, i) for k, i in tombstones)
        self.lock_delays = {k: float(v) for k, v in rest.get("lock_delays", [])}

    def frozen_copy(self) -> dict[str, Any]:
        """A point-in-time copy cheap enough to take on the event loop (rows are immutable)."""
        return {
            "entries": FrozenRows(self.entries.items()),
            "tombstones": list(self.tombstones.items()),
            "lock_delays": list(self.lock_delays.items()),
        }
