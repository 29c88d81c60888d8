"""GET /v1/snapshot (save) and PUT /v1/snapshot (restore, through Raft).

Both directions go through temporary files, never a whole archive or state in memory. Save:
a point-in-time view of the store is frozen on the event loop (rows are immutable: a shallow
copy), serialised record by record into a file in a worker thread, wrapped into the archive
(another file) and streamed out in chunks. Restore: the upload is spooled to disk as it arrives
(refused with 413 the moment it passes limits.snapshot_max_size), verified completely
(checksums, format) in a streaming pass into a state file, and only then that file goes to
the server, which loads it into a new store record by record and installs the file itself as
a Raft snapshot (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import functools
import io
import tempfile
import zlib
from typing import Any, BinaryIO

from aiohttp import web

from consulpy.agent.client import ClientDelegate
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    empty_ok,
    endpoint,
    meta_headers,
    query_options,
)
from consulpy.http.tokens import request_token
from consulpy.server import snapshot_archive
from consulpy.server.endpoints.snapshot import SnapshotRestore, StateFile

_CHUNK = 1 << 20


def _max_size(req: web.Request) -> int:
    limits = getattr(agent_of(req).config, "limits", None)
    return int(getattr(limits, "snapshot_max_size", snapshot_archive.MAX_ARCHIVE))


@endpoint("GET", "PUT")
async def snapshot(req: web.Request) -> web.StreamResponse:
    if req.method == "GET":
        return await _save(req)
    return await _restore(req)


async def _save(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    opts = query_options(req)
    # In process: a frozen point-in-time view, serialised below as it is written to a file;
    # forwarded (client agent, another server, ?dc): the state's bytes.
    meta, state = await agent.delegate.read("Snapshot.State", {}, opts, token=request_token(req))
    # the term of a server (through a client agent, the one that answers)
    term = int((await agent.delegate.status()).get("term") or 0)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile() as state_file, tempfile.TemporaryFile() as spool:
        build = functools.partial(
            _build_archive,
            spool,
            state_file,
            state,
            index=meta.index,
            term=term,
            datacenter=agent.datacenter,
        )
        await loop.run_in_executor(None, build)
        del state  # the frozen view (the rows it pins) is no longer needed
        size = spool.tell()
        spool.seek(0)
        resp = web.StreamResponse(headers=meta_headers(meta))
        resp.content_type = "application/x-gzip"
        resp.content_length = size
        await resp.prepare(req)
        while chunk := await loop.run_in_executor(None, spool.read, _CHUNK):
            await resp.write(chunk)
        await resp.write_eof()
    return resp


def _build_archive(
    spool: BinaryIO, state_file: BinaryIO, state: Any, *, index: int, term: int, datacenter: str
) -> None:
    """Serialise the state into `state_file` (record by record when it is a frozen view),
    then the archive into `spool`, copying the state in chunks (runs in a worker thread)."""
    out = snapshot_archive.Digesting(state_file)
    if isinstance(state, bytes):
        out.write(state)
    else:
        state.write_to(out)
    state_file.flush()
    state_file.seek(0)
    snapshot_archive.write_file(
        spool,
        state_file,
        size=out.size,
        sha256=out.sha.hexdigest(),
        index=index,
        term=term,
        datacenter=datacenter,
    )


async def _restore(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    max_size = _max_size(req)
    if req.content_length is not None and req.content_length > max_size:
        raise HTTPError(413, f"snapshot archive larger than {max_size} bytes")
    loop = asyncio.get_running_loop()
    with (
        tempfile.TemporaryFile() as spool,
        tempfile.TemporaryFile(prefix="consulpy-restore-") as state_file,
    ):
        size = 0
        while chunk := await req.content.read(_CHUNK):
            size += len(chunk)
            if size > max_size:
                raise HTTPError(413, f"snapshot archive larger than {max_size} bytes")
            await loop.run_in_executor(None, spool.write, chunk)
        spool.seek(0)
        try:
            state_size = await loop.run_in_executor(None, _verify_to, spool, state_file, max_size)
        except snapshot_archive.ArchiveError as exc:
            raise HTTPError(400, f"Snapshot restore failed: {exc}") from exc
        spool.close()  # the archive is no longer needed
        # The leader's own server gets the verified state as this open file (unnamed, so the
        # kernel frees it even on kill -9), read record by record into the new store and
        # copied by Raft into its snapshot: never whole in memory. Anywhere else it is
        # forwarded compressed in one RPC (about the archive's size, which fits an RPC frame;
        # the state may not). Decided with no wait before the call, so leadership cannot
        # have moved in between.
        if _leads(agent.delegate):
            state: bytes | StateFile = StateFile(state_file.fileno(), state_size)
            encoding = ""
        else:
            state = await loop.run_in_executor(None, _compress, state_file)
            encoding = "zlib"
        # Snapshot.Restore loads the state before it reaches Raft: a bad one is a 400.
        restore = SnapshotRestore(state, encoding=encoding)
        del state
        await agent.delegate.apply("Snapshot.Restore", restore, request_token(req))
    return empty_ok()


def _leads(delegate: object) -> bool:
    """Is this agent the leader's own server (Snapshot.Restore then runs in process)?"""
    if isinstance(delegate, ClientDelegate):
        return False
    applier = getattr(delegate, "applier", None)
    return applier is not None and bool(applier.is_leader())


def _verify_to(spool: BinaryIO, state_file: BinaryIO, max_size: int) -> int:
    """Check the whole archive, then copy its state into `state_file` (flushed); returns
    the state's size."""
    snapshot_archive.verify_file(spool, max_size, state_file.write)
    state_file.flush()
    return state_file.tell()


def _compress(state_file: BinaryIO) -> bytes:
    """The state zlib-compressed, read from its file in chunks (about the archive's size,
    never the decompressed state): what a client agent forwards."""
    z = zlib.compressobj(6)
    out = io.BytesIO()
    state_file.seek(0)
    while chunk := state_file.read(_CHUNK):
        out.write(z.compress(chunk))
    out.write(z.flush())
    return out.getvalue()


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/snapshot", snapshot)]
