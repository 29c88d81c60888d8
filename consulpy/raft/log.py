"""RaftLog: the core's log, from the compaction point to the last entry.

Entries after the compaction point are in memory except a released prefix: entries every
server holds (applied, durable, and matched by every peer) are dropped from memory at once
(`release_to`) and only their terms are kept, as runs, for the consistency checks. Why: a
snapshot interval of ~1 KB entries freed together at the next snapshot leaves holes between
the long-lived state rows that the allocator cannot give back; freed one by one, each entry's
memory is reused by the next. The disk (the WAL) still holds them; a follower that needs one
gets a snapshot instead (the core asks the driver for one, see RaftCore.snapshot_wanted).
"""

from __future__ import annotations

import bisect

from consulpy.raft.types import Entry


class RaftLog:
    def __init__(self, base_index: int = 0, base_term: int = 0) -> None:
        # Entries <= base_index are compacted; base_term is the term of entry base_index.
        self.base_index = base_index
        self.base_term = base_term
        # Entries base_index+1..released are out of memory: their terms as runs, (first index,
        # term) each, ascending; entries holds released+1..last.
        self.released = base_index
        self._run_starts: list[int] = []
        self._run_terms: list[int] = []
        self.entries: list[Entry] = []

    @property
    def first_index(self) -> int:
        return self.base_index + 1

    @property
    def first_in_memory(self) -> int:
        """The first index whose entry (not only its term) is held."""
        return self.released + 1

    @property
    def last_index(self) -> int:
        return self.released + len(self.entries)

    @property
    def last_term(self) -> int:
        if self.entries:
            return self.entries[-1].term
        return self.term(self.released) or 0

    def term(self, index: int) -> int | None:
        """Term of the entry at `index`, or None when it is compacted or beyond the end."""
        if index == self.base_index:
            return self.base_term
        if index < self.base_index or index > self.last_index:
            return None
        if index <= self.released:
            return self._run_terms[bisect.bisect_right(self._run_starts, index) - 1]
        return self.entries[index - self.released - 1].term

    def entry(self, index: int) -> Entry:
        assert index > self.released, "entry released from memory"
        return self.entries[index - self.released - 1]

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries lo..hi-1 (lo >= first_in_memory); with max_bytes, at least one entry."""
        assert lo > self.released, "entries released from memory"
        out = self.entries[lo - self.released - 1 : hi - self.released - 1]
        if max_bytes is None or not out:
            return out
        size = 0
        for n, e in enumerate(out):
            size += e.size()
            if size > max_bytes and n > 0:
                return out[:n]
        return out

    def truncate_from(self, index: int) -> None:
        """Drop entries >= index (conflicting suffix); never below the released prefix."""
        assert index > self.released, "truncating released or compacted entries"
        del self.entries[index - self.released - 1 :]

    def append(self, entries: list[Entry]) -> None:
        assert not entries or entries[0].index == self.last_index + 1, "log gap"
        self.entries.extend(entries)

    def release_to(self, index: int) -> None:
        """Drop entries <= index from memory, keeping their terms (they stay on disk)."""
        index = min(index, self.last_index)
        if index <= self.released:
            return
        n = index - self.released
        starts, terms = self._run_starts, self._run_terms
        for e in self.entries[:n]:
            if not terms or terms[-1] != e.term:
                starts.append(e.index)
                terms.append(e.term)
        del self.entries[:n]
        self.released = index

    def compact_to(self, index: int) -> None:
        """Forget entries <= index, remembering the term of entry `index`."""
        if index <= self.base_index:
            return
        term = self.term(index)
        assert term is not None, "compacting beyond the end of the log"
        if index >= self.released:
            del self.entries[: index - self.released]
            self.released = index
            self._run_starts, self._run_terms = [], []
        else:
            # Keep the runs from the one holding index + 1 on, that run starting there.
            keep = bisect.bisect_right(self._run_starts, index + 1) - 1
            del self._run_starts[:keep], self._run_terms[:keep]
            self._run_starts[0] = index + 1
        self.base_index = index
        self.base_term = term

    def reset(self, index: int, term: int) -> None:
        """Discard everything: the log now starts after a snapshot at (index, term)."""
        self.entries = []
        self._run_starts, self._run_terms = [], []
        self.base_index = self.released = index
        self.base_term = term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Election restriction: is a log ending at (last_index, last_term) at least as recent?"""
        return last_term > self.last_term or (
            last_term == self.last_term and last_index >= self.last_index
        )
