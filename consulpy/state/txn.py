"""Write transactions over the state store: an undo log plus the set of things touched.

Every mutation of a table goes through a `WriteTxn`, which records how to undo it. A command
either commits (table indexes move to the command's Raft index and the touched watches fire)
or aborts (the undo log is replayed in reverse, so nothing is visible). This is what lets a
/v1/txn request evaluate every operation against the effects of the earlier ones, and still
leave no trace when any of them fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from consulpy.state.watch import Topic

if TYPE_CHECKING:
    from consulpy.state.store import StateStore


class WriteTxn:
    __slots__ = ("_undo", "done", "index", "kv_keys", "store", "tables", "topics")

    def __init__(self, store: StateStore, index: int) -> None:
        self.store = store
        self.index = index
        self._undo: list[Callable[[], None]] = []
        self.tables: set[str] = set()
        self.topics: set[Topic] = set()
        self.kv_keys: set[str] = set()
        self.done = False

    def on_undo(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def touch(self, table: str, *topics: Topic) -> None:
        """Record that `table` changed (its index moves on commit) and which topics to wake."""
        self.tables.add(table)
        self.topics.update(topics)

    def touch_kv(self, key: str) -> None:
        self.tables.add("kvs")
        self.kv_keys.add(key)

    @property
    def changed(self) -> bool:
        return bool(self.tables)

    def commit(self) -> None:
        assert not self.done
        self.done = True
        store = self.store
        index = self.index
        indexes = store.indexes
        for table in self.tables:
            indexes[table] = index
        if index > store.last_index:
            store.last_index = index
        if self.tables:
            self.topics.update(("t", table) for table in self.tables)
            store.watches.notify(self.topics, self.kv_keys)

    def abort(self) -> None:
        assert not self.done
        self.done = True
        failures: list[BaseException] = []
        for fn in reversed(self._undo):
            try:
                fn()
            except Exception as exc:  # undo the rest regardless; report below
                failures.append(exc)
        self._undo.clear()
        if failures:
            raise RuntimeError(f"undo failed: {failures[0]!r}") from failures[0]
