"""Snapshot: Snapshot.State (the whole store, for /v1/snapshot save) and Snapshot.Restore,
which installs an archive's state as a Raft snapshot (never as a log entry)."""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, NoLeaderError, RequestError
from consulpy.server.raft_applier import NotLeaderError, OutcomeUnknown, report_problems
from consulpy.server.snapshot_archive import MAX_ARCHIVE, STATE_SIZE_FACTOR
from consulpy.state import commands as C
from consulpy.state.snapshot_stream import buffer_reader
from consulpy.state.store import StateStore

if TYPE_CHECKING:
    from consulpy.server.server import Server

# A compressed state (from a client agent) may inflate to this much, as in the archive check.
MAX_STATE = STATE_SIZE_FACTOR * MAX_ARCHIVE


@dataclass(frozen=True, slots=True)
class SnapshotRestore:
    state: bytes  # the serialised store from a snapshot archive
    encoding: str = ""  # "zlib": `state` is compressed (what a client agent forwards)


def _load(state: bytes, encoding: str) -> tuple[bytes, StateStore]:
    """The state bytes and the store built from them (runs in a worker thread: the new
    store is private until it is swapped in)."""
    if encoding == C.RESTORE_ZLIB:
        z = zlib.decompressobj()
        state = z.decompress(state, MAX_STATE + 1)
        if len(state) > MAX_STATE:
            raise ValueError(f"state larger than {MAX_STATE} bytes")
        if not z.eof:
            raise ValueError("compressed snapshot state is truncated")
    return state, StateStore.loaded_from(buffer_reader(state))


async def restore(server: Server, req: Request[SnapshotRestore]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)  # Consul: a management token
    payload = req.payload
    if payload.encoding not in ("", C.RESTORE_ZLIB):
        raise RequestError(f"Snapshot restore failed: unknown state encoding {payload.encoding!r}")
    loop = asyncio.get_running_loop()
    try:  # load it now: what fails here never reaches Raft, and the same store is swapped in
        state, prepared = await loop.run_in_executor(None, _load, payload.state, payload.encoding)
    except Exception as exc:  # any decoding or shape error: the bytes are not a store
        raise RequestError(f"Snapshot restore failed: {exc}") from exc
    del payload
    try:
        await server.applier.restore(state, prepared)
    except NotLeaderError as exc:
        raise NoLeaderError() from exc
    except OutcomeUnknown as exc:
        raise CommandError(str(exc)) from exc
    finally:
        del prepared, state
    report_problems(server.fsm.store, "restore")
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
