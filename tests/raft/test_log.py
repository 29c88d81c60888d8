"""RaftLog: entries released from memory keep their terms through compaction and reset."""

from __future__ import annotations

import pytest

from consulpy.raft.log import RaftLog
from consulpy.raft.types import Entry


def _log() -> RaftLog:
    log = RaftLog()
    log.append([Entry(t, i) for i, t in enumerate([1, 1, 2, 2, 2, 3, 3, 4], start=1)])
    return log


def test_released_entries_keep_their_terms() -> None:
    log = _log()
    log.release_to(6)
    assert log.first_in_memory == 7 and len(log.entries) == 2
    assert [log.term(i) for i in range(0, 9)] == [0, 1, 1, 2, 2, 2, 3, 3, 4]
    assert log.term(9) is None
    with pytest.raises(AssertionError):
        log.slice(6, 8)
    assert [e.index for e in log.slice(7, 9)] == [7, 8]
    log.release_to(100)  # no further than the last entry
    assert log.released == 8 and log.last_index == 8 and log.last_term == 4
    log.append([Entry(4, 9)])
    assert log.last_index == 9 and log.entry(9).index == 9


def test_compaction_inside_and_beyond_the_released_prefix() -> None:
    log = _log()
    log.release_to(6)
    log.compact_to(3)
    assert (log.base_index, log.base_term) == (3, 2)
    assert [log.term(i) for i in range(2, 9)] == [None, 2, 2, 2, 3, 3, 4]
    log.compact_to(5)
    assert [log.term(i) for i in range(5, 9)] == [2, 3, 3, 4]
    log.compact_to(7)  # past the released prefix: the in-memory entries go too
    assert (log.base_index, log.released, log.first_in_memory) == (7, 7, 8)
    assert [log.term(i) for i in range(7, 9)] == [3, 4]
    log.reset(20, 5)
    assert (log.base_index, log.released, log.last_index, log.last_term) == (20, 20, 20, 5)
