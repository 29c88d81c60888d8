"""Snapshot: Snapshot.State (the whole store, for /v1/snapshot save) and Snapshot.Restore,
the only way a `restore` command reaches the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError
from consulpy.state import commands as C
from consulpy.state.store import StateStore

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class SnapshotRestore:
    state: bytes  # the serialised store from a snapshot archive


async def restore(server: Server, req: Request[SnapshotRestore]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)  # Consul: a management token
    try:
        StateStore().restore(req.payload.state)  # refuse what the servers could not load
    except Exception as exc:  # any decoding or shape error: the bytes are not a store
        raise CommandError(f"Snapshot restore failed: {exc}") from exc
    await server.propose(C.restore(req.payload.state, ts=server.now()))
    # Sessions (and their TTLs) were replaced wholesale: re-arm from the new state.
    server.leader.stop()
    server.leader.start()
    return True


ENDPOINTS = [
    read(
        "Snapshot.State",
        Empty,
        reads.snapshot_state,
        lambda _s, _p: [Need(Resource.ACL, "", Access.WRITE)],
    ),
    write("Snapshot.Restore", SnapshotRestore, restore),
]
