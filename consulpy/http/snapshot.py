"""GET /v1/snapshot (save) and PUT /v1/snapshot (restore, through Raft)."""

from __future__ import annotations

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


@endpoint("GET", "PUT")
async def snapshot(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if req.method == "GET":
        opts = query_options(req)
        meta, state = await agent.delegate.read(
            "Snapshot.State", {}, opts, token=request_token(req)
        )
        # the term of a server (through a client agent, the one that answers)
        term = int((await agent.delegate.status()).get("term") or 0)
        archive = snapshot_archive.build(
            state, index=meta.index, term=term, datacenter=agent.datacenter
        )
        return web.Response(
            body=archive, content_type="application/x-gzip", headers=meta_headers(meta)
        )
    chunks = []
    size = 0
    while True:
        chunk = await req.content.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > snapshot_archive.MAX_ARCHIVE:
            raise HTTPError(
                413, f"snapshot archive larger than {snapshot_archive.MAX_ARCHIVE} bytes"
            )
        chunks.append(chunk)
    try:
        _, state = snapshot_archive.read(b"".join(chunks))
    except (snapshot_archive.ArchiveError, ValueError, KeyError, TypeError) as exc:
        raise HTTPError(500, f"Snapshot restore failed: {exc}") from exc
    # The Snapshot.Restore endpoint checks that the state loads before proposing it.
    await agent.delegate.apply("Snapshot.Restore", SnapshotRestore(state), request_token(req))
    return empty_ok()


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/snapshot", snapshot)]
