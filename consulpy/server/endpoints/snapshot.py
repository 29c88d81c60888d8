"""Snapshot: Snapshot.State (the whole store, for /v1/snapshot save) and Snapshot.Restore,
which installs an archive's state as a Raft snapshot (never as a log entry)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO, cast

from consulpy.raft.snapshot_store import SnapshotFile, SnapshotReader
from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, NoLeaderError, RequestError
from consulpy.server.raft_applier import NotLeaderError, OutcomeUnknown, report_problems
from consulpy.server.snapshot_archive import MAX_ARCHIVE, STATE_SIZE_FACTOR
from consulpy.state import commands as C
from consulpy.state.store import StateStore

if TYPE_CHECKING:
    from consulpy.server.server import Server

# A compressed state (from a client agent) may inflate to this much, as in the archive check.
MAX_STATE = STATE_SIZE_FACTOR * MAX_ARCHIVE
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StateFile:
    """A verified state spooled to an open file on this host (the HTTP handler of the
    leader's own server passes one in process; the caller keeps the descriptor and closes
    it). Never on the wire: an RPC payload decodes to plain values only, so no remote caller
    can make a server read a file of its choosing."""

    fd: int
    size: int


@dataclass(frozen=True, slots=True)
class SnapshotRestore:
    state: bytes | StateFile  # the serialised store from a snapshot archive
    encoding: str = ""  # "zlib": `state` is compressed bytes (what a client agent forwards)


def _inflate(data: bytes, out: BinaryIO) -> None:
    """Decompress a forwarded state into a temporary file in chunks (at most MAX_STATE
    bytes)."""
    z = zlib.decompressobj()
    size = 0
    view = memoryview(data)
    for off in range(0, len(view), _CHUNK):
        pending: bytes | memoryview = view[off : off + _CHUNK]
        while pending:
            piece = z.decompress(pending, _CHUNK)
            pending = z.unconsumed_tail
            size += len(piece)
            if size > MAX_STATE:
                raise ValueError(f"state larger than {MAX_STATE} bytes")
            out.write(piece)
    out.write(z.flush())
    if not z.eof:
        raise ValueError("compressed snapshot state is truncated")
    out.flush()


def _load(fd: int, size: int) -> tuple[SnapshotFile, StateStore]:
    """The state file (read on demand by Raft) and the store built from it record by record
    (runs in a worker thread: the new store is private until it is swapped in). Neither the
    state's bytes nor an encoded copy of it is ever held in memory."""
    data = SnapshotFile.from_fd(fd, 0, size)
    try:
        return data, StateStore.loaded_from(cast(IO[bytes], SnapshotReader(data)))
    except BaseException:
        data.close()
        raise


async def restore(server: Server, req: Request[SnapshotRestore]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)  # Consul: a management token
    payload = req.payload
    if payload.encoding not in ("", C.RESTORE_ZLIB):
        raise RequestError(f"Snapshot restore failed: unknown state encoding {payload.encoding!r}")
    with tempfile.TemporaryFile(prefix="consulpy-restore-") as spool:
        return await _restore(server, payload, spool)


async def _restore(server: Server, payload: SnapshotRestore, spool: BinaryIO) -> bool:
    """Restore from the caller's state file, or from `spool` (an unnamed temporary file,
    freed by the kernel even on kill -9) holding a state that came in the message."""
    loop = asyncio.get_running_loop()
    local = isinstance(payload.state, StateFile)
    try:
        if isinstance(payload.state, StateFile):
            fd, size = payload.state.fd, payload.state.size
        else:
            if payload.encoding == C.RESTORE_ZLIB:
                await loop.run_in_executor(None, _inflate, payload.state, spool)
            else:
                await loop.run_in_executor(None, _write, spool, payload.state)
            fd, size = spool.fileno(), os.fstat(spool.fileno()).st_size
        # load it now: what fails here never reaches Raft, and the same store is swapped in
        data, prepared = await loop.run_in_executor(None, _load, fd, size)
    except Exception as exc:  # any decoding or shape error: the bytes are not a store
        raise RequestError(f"Snapshot restore failed: {exc}") from exc
    del payload
    try:
        await server.applier.restore(data, prepared)
    except NotLeaderError as exc:
        if local:  # the file cannot be forwarded; nothing changed
            raise CommandError(
                "Snapshot restore failed: leadership moved during the restore; "
                "nothing changed, retry"
            ) from exc
        raise NoLeaderError() from exc
    except OutcomeUnknown as exc:
        raise CommandError(str(exc)) from exc
    finally:
        del prepared, data  # Raft holds its own descriptor, or its saved copy
    report_problems(server.fsm.store, "restore")
    # Sessions (and their TTLs) were replaced wholesale: re-arm from the new state.
    server.leader.stop()
    server.leader.start()
    return True


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(data)
    out.flush()


ENDPOINTS = [
    read(
        "Snapshot.State",
        Empty,
        reads.snapshot_state,
        lambda _s, _p: [Need(Resource.ACL, "", Access.WRITE)],
    ),
    write("Snapshot.Restore", SnapshotRestore, restore),
]
