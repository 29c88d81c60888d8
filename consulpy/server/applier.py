"""How a server gets a command into the replicated log.

`InMemoryApplier` is the dev-mode applier: one server, no log, consecutive indexes, applied
immediately (Consul's -dev mode keeps its state in memory too). The Raft-backed applier
replaces it without changing the store, the FSM or anything that calls `apply`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from consulpy.raft.types import SnapshotData
from consulpy.state.fsm import FSM
from consulpy.state.store import StateStore


class Applier(Protocol):
    """What the server needs from consensus."""

    async def apply(self, data: bytes) -> tuple[int, Any]:
        """Append, commit and apply one command; return (index, FSM result)."""
        ...

    async def restore(self, data: bytes | SnapshotData, prepared: StateStore) -> int:
        """Replace the whole state with `data` (a serialised store, as bytes or a file read on
        demand; `prepared` is that store, already loaded); return the index it took once it
        is committed."""
        ...

    def is_leader(self) -> bool: ...

    def leader(self) -> tuple[str | None, str | None]:
        """(node id, server address) of the current leader, or (None, None)."""
        ...

    def last_contact_ms(self) -> int:
        """Milliseconds since this server last heard from the leader (0 on the leader)."""
        ...

    async def barrier(self) -> None:
        """Return once every entry committed before the call is applied locally (the
        linearizable read point for ?consistent)."""
        ...

    def on_leader_change(self, callback: Callable[[bool], None]) -> None: ...


class InMemoryApplier:
    def __init__(self, fsm: FSM, node_id: str, address: str) -> None:
        self.fsm = fsm
        self._node_id = node_id
        self._address = address
        self._callbacks: list[Callable[[bool], None]] = []

    async def apply(self, data: bytes) -> tuple[int, Any]:
        index = self.fsm.store.last_index + 1
        return index, self.fsm.apply(index, data)

    async def restore(self, data: bytes | SnapshotData, prepared: StateStore) -> int:
        self.fsm.store.adopt(prepared)
        return self.fsm.store.last_index

    def is_leader(self) -> bool:
        return True

    def leader(self) -> tuple[str | None, str | None]:
        return self._node_id, self._address

    def last_contact_ms(self) -> int:
        return 0

    async def barrier(self) -> None:
        return None

    def on_leader_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        for callback in self._callbacks:
            callback(True)
