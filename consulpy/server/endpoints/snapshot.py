"""Snapshot: Snapshot.State (the whole store, for /v1/snapshot save) and Snapshot.Restore,
the only way a `restore` command reaches the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import RequestError
from consulpy.state import commands as C
from consulpy.state.store import StateStore

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class SnapshotRestore:
    state: bytes  # the serialised store from a snapshot archive
    encoding: str = ""  # "zlib": `state` is compressed (what PUT /v1/snapshot sends)


async def restore(server: Server, req: Request[SnapshotRestore]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)  # Consul: a management token
    payload = req.payload
    if payload.encoding not in ("", C.RESTORE_ZLIB):
        raise RequestError(f"Snapshot restore failed: unknown state encoding {payload.encoding!r}")
    try:  # refuse what the servers could not load (streamed: no decoded copy is kept)
        StateStore().restore_from(C.restore_source(payload.state, payload.encoding))
    except Exception as exc:  # any decoding or shape error: the bytes are not a store
        raise RequestError(f"Snapshot restore failed: {exc}") from exc
    await server.propose(C.restore(payload.state, ts=server.now(), encoding=payload.encoding))
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
