"""RaftLog: the in-memory log of the core, from the compaction point to the last entry.

The whole uncompacted log (trailing entries plus everything since the last snapshot) stays in
memory, so the core never reads storage: storage is written in order and read only at start.
"""

from __future__ import annotations

from consulpy.raft.types import Entry


class RaftLog:
    def __init__(self, base_index: int = 0, base_term: int = 0) -> None:
        # Entries <= base_index are compacted; base_term is the term of entry base_index.
        self.base_index = base_index
        self.base_term = base_term
        self.entries: list[Entry] = []

    @property
    def first_index(self) -> int:
        return self.base_index + 1

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.base_term

    def term(self, index: int) -> int | None:
        """Term of the entry at `index`, or None when it is compacted or beyond the end."""
        if index == self.base_index:
            return self.base_term
        if index < self.base_index or index > self.last_index:
            return None
        return self.entries[index - self.base_index - 1].term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.base_index - 1]

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries lo..hi-1 (lo >= first_index); with max_bytes, at least one entry."""
        out = self.entries[lo - self.base_index - 1 : hi - self.base_index - 1]
        if max_bytes is None or not out:
            return out
        size = 0
        for n, e in enumerate(out):
            size += e.size()
            if size > max_bytes and n > 0:
                return out[:n]
        return out

    def truncate_from(self, index: int) -> None:
        """Drop entries >= index (conflicting suffix); never below the compaction point."""
        assert index > self.base_index, "truncating compacted entries"
        del self.entries[index - self.base_index - 1 :]

    def append(self, entries: list[Entry]) -> None:
        assert not entries or entries[0].index == self.last_index + 1, "log gap"
        self.entries.extend(entries)

    def compact_to(self, index: int) -> None:
        """Forget entries <= index, remembering the term of entry `index`."""
        if index <= self.base_index:
            return
        term = self.term(index)
        assert term is not None, "compacting beyond the end of the log"
        del self.entries[: index - self.base_index]
        self.base_index = index
        self.base_term = term

    def reset(self, index: int, term: int) -> None:
        """Discard everything: the log now starts after a snapshot at (index, term)."""
        self.entries = []
        self.base_index = index
        self.base_term = term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Election restriction: is a log ending at (last_index, last_term) at least as recent?"""
        return last_term > self.last_term or (
            last_term == self.last_term and last_index >= self.last_index
        )
