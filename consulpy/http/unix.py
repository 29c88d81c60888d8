"""The HTTP API on unix sockets (`addresses.http = "unix:///path"`), with the owner and mode
of `unix_sockets`, so access can be granted by file permissions instead of a token."""

from __future__ import annotations

import os
import ssl
import stat

import structlog
from aiohttp import web

from consulpy.config.model import UnixSockets

log = structlog.get_logger(__name__)


def _clear(path: str) -> None:
    """Remove a stale socket left by an earlier run (as Consul does); refuse anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a unix socket; not replacing it")
    log.warning("replacing socket", path=path)
    os.unlink(path)


def set_permissions(path: str, sockets: UnixSockets) -> None:
    """Give the socket file the configured owner/group and mode (None: left as created)."""
    if sockets.uid is not None or sockets.gid is not None:
        os.chown(
            path,
            -1 if sockets.uid is None else sockets.uid,
            -1 if sockets.gid is None else sockets.gid,
        )
    if sockets.mode is not None:
        os.chmod(path, sockets.mode)


async def start_site(
    runner: web.AppRunner,
    path: str,
    sockets: UnixSockets,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 128,
) -> web.UnixSite:
    """Listen on `path` (plain HTTP, or HTTPS with `ssl_context`) and apply `sockets`."""
    _clear(path)
    site = web.UnixSite(runner, path, ssl_context=ssl_context, backlog=backlog)
    await site.start()
    try:
        set_permissions(path, sockets)
    except OSError as exc:
        await site.stop()
        remove(path)
        raise OSError(f"setting up socket {path}: {exc}") from exc
    return site


def remove(path: str) -> None:
    """Unlink a socket file we created (the listener is closed)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
