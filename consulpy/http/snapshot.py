"""GET /v1/snapshot (save) and PUT /v1/snapshot (restore, through Raft).

Both directions go through temporary files, never a whole archive or state in memory. Save:
a point-in-time view of the store is frozen on the event loop (rows are immutable: a shallow
copy), serialised record by record into a file in a worker thread, wrapped into the archive
(another file) and streamed out in chunks. Restore: the upload is spooled to disk as it arrives
(refused with 413 the moment it passes limits.snapshot_max_size), verified completely
(checksums, format) in a streaming pass, and only then its state goes to the server, which
loads it into a new store and installs it as a Raft snapshot (docs/reliability.md).
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
from consulpy.server.endpoints.snapshot import SnapshotRestore

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
    with tempfile.TemporaryFile() as spool:
        size = 0
        while chunk := await req.content.read(_CHUNK):
            size += len(chunk)
            if size > max_size:
                raise HTTPError(413, f"snapshot archive larger than {max_size} bytes")
            await loop.run_in_executor(None, spool.write, chunk)
        spool.seek(0)
        # The leader gets the state as is (it becomes the Raft snapshot's bytes, read from a
        # file in one allocation); anywhere else it is forwarded compressed in one RPC (about
        # the archive's size, which fits an RPC frame; the state may not).
        forward = not _leads(agent.delegate)
        verify = _verify_and_compress if forward else _verify_and_read
        try:
            state = await loop.run_in_executor(None, verify, spool, max_size)
        except snapshot_archive.ArchiveError as exc:
            raise HTTPError(400, f"Snapshot restore failed: {exc}") from exc
    # Snapshot.Restore loads the state before it reaches Raft: a bad one is a 400.
    restore = SnapshotRestore(state, encoding="zlib" if forward else "")
    del state
    await agent.delegate.apply("Snapshot.Restore", restore, request_token(req))
    return empty_ok()


def _leads(delegate: object) -> bool:
    """Is this agent the leader's own server (Snapshot.Restore then runs in process)?"""
    if isinstance(delegate, ClientDelegate):
        return False
    applier = getattr(delegate, "applier", None)
    return applier is not None and bool(applier.is_leader())


def _verify_and_compress(spool: BinaryIO, max_size: int) -> bytes:
    """Check the whole archive, then return its state zlib-compressed (about the archive's
    size, never the decompressed state): what a client agent forwards."""
    z = zlib.compressobj(6)
    out = io.BytesIO()
    snapshot_archive.verify_file(spool, max_size, lambda chunk: out.write(z.compress(chunk)))
    out.write(z.flush())
    return out.getvalue()


def _verify_and_read(spool: BinaryIO, max_size: int) -> bytes:
    """Check the whole archive, copy its state into a temporary file, then read that back as
    one bytes object (exactly sized: no growing buffer, no joined copy)."""
    with tempfile.TemporaryFile() as state_file:
        snapshot_archive.verify_file(spool, max_size, state_file.write)
        state_file.seek(0)
        return state_file.read()


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/snapshot", snapshot)]
