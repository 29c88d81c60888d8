"""GET /v1/snapshot (save) and PUT /v1/snapshot (restore, through Raft).

Both directions go through a temporary file, never a whole archive in memory: the upload is
spooled to disk as it arrives (refused with 413 the moment it passes limits.snapshot_max_size)
and verified in a streaming pass before anything is proposed; the download is compressed into
a file in a worker thread and streamed out in chunks.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from typing import BinaryIO

from aiohttp import web

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
    meta, state = await agent.delegate.read("Snapshot.State", {}, opts, token=request_token(req))
    # the term of a server (through a client agent, the one that answers)
    term = int((await agent.delegate.status()).get("term") or 0)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile() as spool:
        write = functools.partial(
            snapshot_archive.write,
            spool,
            state,
            index=meta.index,
            term=term,
            datacenter=agent.datacenter,
        )
        await loop.run_in_executor(None, write)
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
        try:
            _, state = await loop.run_in_executor(None, _read, spool, max_size)
        except (snapshot_archive.ArchiveError, ValueError, KeyError, TypeError) as exc:
            raise HTTPError(500, f"Snapshot restore failed: {exc}") from exc
    # The Snapshot.Restore endpoint checks that the state loads before proposing it.
    await agent.delegate.apply("Snapshot.Restore", SnapshotRestore(state), request_token(req))
    return empty_ok()


def _read(spool: BinaryIO, max_size: int) -> tuple[dict, bytes]:
    return snapshot_archive.read_file(spool, max_size)


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/snapshot", snapshot)]
