"""Stopping an HTTP listener: the short requests in flight (also one that arrives on an open
connection while the stop waits) finish within the grace period; long ones (blocking
queries) are closed at once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
from aiohttp import web

from consulpy.http import limits as http_limits
from consulpy.http.app import _front
from consulpy.http.inflight import InFlight
from tests.helpers import eventually


async def serve_until_stopped() -> None:
    inflight = InFlight()
    owner = SimpleNamespace(config=SimpleNamespace(http_config={}))
    limits = http_limits.RequestLimits(owner, 1 << 20)  # type: ignore[arg-type]
    release = asyncio.Event()
    entered: asyncio.Queue[str] = asyncio.Queue()

    async def handler(req: web.Request) -> web.StreamResponse:
        await entered.put(req.query.get("n", ""))
        if "index" in req.query:
            await asyncio.Event().wait()  # a blocking query: never answers by itself
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_route("GET", "/v1/x", _front(handler, inflight, limits, "/v1/x"))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/v1/x"
    async with aiohttp.ClientSession() as client:
        short = asyncio.ensure_future(client.get(f"{base}?n=1"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/x?index=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert {await entered.get(), await entered.get()} == {"1", ""}
        assert len(inflight.requests) == 2
        stop = asyncio.ensure_future(inflight.stop(30.0))
        # The stop is waiting for the short request.
        await eventually(lambda: inflight.waiting, what="the stop waiting for the short request")
        late = asyncio.ensure_future(client.get(f"{base}?n=2"))
        assert await entered.get() == "2"
        release.set()
        for answer in (short, late):
            resp = await answer
            assert resp.status == 200 and await resp.text() == "done"
        await asyncio.wait_for(stop, 10.0)  # well before the 30 s grace
        assert not inflight.waiting
        assert await reader.read() == b""  # the blocking query's connection was closed
        writer.close()
        assert not inflight.requests
    await runner.cleanup()


def test_stop_waits_for_short_requests_and_closes_long_ones() -> None:
    asyncio.run(asyncio.wait_for(serve_until_stopped(), 30.0))
