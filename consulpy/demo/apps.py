"""The demo services of the dev cluster (docker-compose.yml and `consulpy dev-cluster`).

`api` answers `GET /` with who it is and who called it. `web` answers `GET /` by calling its
upstream (api, through web's sidecar: `http://127.0.0.1:<local_bind_port>/`) and wrapping
what api said; when that call fails it answers 502 with a plain-text reason, so a denied
intention is visible with curl. Both answer `GET /health` with 200 for their health checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

UPSTREAM_TIMEOUT = 5.0
INFO = web.AppKey("info", dict)  # {"instance": ...}: filled in once the port is known
SESSION = web.AppKey("session", aiohttp.ClientSession)


def caller_identity(xfcc: str) -> str | None:
    """The SPIFFE ID of the calling service, from the X-Forwarded-Client-Cert header that the
    sidecar adds for http services (`By=...;URI=spiffe://...`; the last element is the one
    our sidecar appended)."""
    if not xfcc:
        return None
    element = xfcc.split(",")[-1]
    for part in element.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "uri":
            return value.strip().strip('"') or None
    return None


async def _health(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def api_app(name: str = "api", instance: str = "") -> web.Application:
    """The `api` service: `GET /` answers JSON naming this service, its instance and caller."""

    async def index(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": name,
                "instance": request.app[INFO]["instance"],
                "peer": request.remote,
                "caller": caller_identity(request.headers.get("X-Forwarded-Client-Cert", "")),
                "path": request.path_qs,
            }
        )

    app = web.Application()
    app[INFO] = {"instance": instance}
    app.router.add_get("/health", _health)
    app.router.add_get("/{tail:.*}", index)
    return app


def web_app(upstream: str, name: str = "web", instance: str = "") -> web.Application:
    """The `web` service: `GET /` calls `upstream` and answers with what it said."""
    upstream = upstream.rstrip("/") + "/"

    async def index(request: web.Request) -> web.Response:
        session = request.app[SESSION]
        try:
            async with session.get(upstream) as resp:
                body = await resp.read()
                if resp.status != 200:
                    text = body.decode("utf-8", "replace").strip() or resp.reason or ""
                    return _bad_gateway(upstream, f"answered {resp.status}: {text}")
                try:
                    said: Any = await resp.json(content_type=None)
                except ValueError:
                    said = body.decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return _bad_gateway(upstream, f"failed: {type(exc).__name__}: {exc}".rstrip(": "))
        instance = request.app[INFO]["instance"]
        return web.json_response({"service": name, "instance": instance, "upstream": said})

    async def session_ctx(app: web.Application) -> Any:
        # A new connection per call: with a tcp (L4) upstream a denied intention then shows on
        # the next request, not only once a pooled connection is closed.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            app[SESSION] = session
            yield

    app = web.Application()
    app[INFO] = {"instance": instance}
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", _health)
    app.router.add_get("/", index)
    return app


def _bad_gateway(upstream: str, what: str) -> web.Response:
    return web.Response(status=502, text=f"web: the call to the upstream at {upstream} {what}\n")


async def serve(
    app: web.Application, host: str, port: int, announce: Callable[[str], None] = print
) -> None:
    """Serve until SIGINT/SIGTERM; `announce` gets the URL once listening (port 0 = any)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        if not app[INFO]["instance"]:
            app[INFO]["instance"] = f"{socket.gethostname()}:{bound}"
        announce(f"http://{shown}:{bound}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
