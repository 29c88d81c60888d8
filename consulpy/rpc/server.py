"""The RPC server side: one multiplexed connection per caller, each request run as a task.

Handlers are `async fn(args) -> result`. An exception whose class is listed in `error_kinds`
travels back by kind and text; anything else becomes an "internal" error (and is logged) so a
bug never kills the connection or the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from consulpy.rpc.codec import MAX_FRAME, FrameError, encode, read_frame
from consulpy.rpc.ratelimit import RATE_LIMITED, RATE_LIMITED_TEXT, TokenBucket
from consulpy.util import aio

log = structlog.get_logger("consulpy.rpc")

Handler = Callable[[Any], Awaitable[Any]]


class RPCServer:
    def __init__(
        self,
        *,
        max_frame: int = MAX_FRAME,
        error_kinds: dict[type[BaseException], str] | None = None,
    ) -> None:
        self.handlers: dict[str, Handler] = {}
        self.max_frame = max_frame
        self.error_kinds = error_kinds or {}
        self.connections = 0
        self.rejected = 0
        # limits.rpc_rate / rpc_max_burst: requests beyond it are answered RATE_LIMITED
        self.limiter: TokenBucket | None = None
        self.rate_limited = 0
        # limits.rpc_max_conns_per_client: open connections allowed per client IP (0: no limit)
        self.max_conns_per_client = 0
        self.conns_by_ip: dict[str, int] = {}
        self.refused_conns = 0

    def register(self, method: str, handler: Handler) -> None:
        self.handlers[method] = handler

    def _kind(self, exc: BaseException) -> str | None:
        for cls in type(exc).__mro__:
            kind = self.error_kinds.get(cls)
            if kind is not None:
                return kind
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection (its protocol byte has been read already); a client IP past
        its connection limit is closed at once, as Consul's RPC connection limiter does."""
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        open_now = self.conns_by_ip.get(ip, 0)
        if 0 < self.max_conns_per_client <= open_now:
            self.refused_conns += 1
            log.warning(
                "rejecting RPC connection: limits.rpc_max_conns_per_client exceeded",
                client=ip,
                limit=self.max_conns_per_client,
            )
            writer.close()
            return
        self.conns_by_ip[ip] = open_now + 1
        try:
            await self._serve(reader, writer)
        finally:
            left = self.conns_by_ip.get(ip, 1) - 1
            if left > 0:
                self.conns_by_ip[ip] = left
            else:
                self.conns_by_ip.pop(ip, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()

        async def answer(request: dict[str, Any]) -> None:
            seq = request["s"]
            handler = self.handlers.get(request.get("m", ""))
            if handler is None:
                reply: dict[str, Any] = {
                    "s": seq,
                    "e": "unknown_method",
                    "t": f"rpc: can't find method {request.get('m')}",
                }
            elif self.limiter is not None and not self.limiter.allow():
                self.rate_limited += 1
                reply = {"s": seq, "e": RATE_LIMITED, "t": RATE_LIMITED_TEXT}
            else:
                try:
                    reply = {"s": seq, "r": await handler(request.get("a"))}
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    kind = self._kind(exc)
                    if kind is None:
                        log.exception("rpc handler failed", method=request.get("m"))
                        kind = "internal"
                    reply = {"s": seq, "e": kind, "t": str(exc)}
            try:
                frame = encode(reply)
            except (TypeError, ValueError) as exc:
                frame = encode({"s": seq, "e": "internal", "t": f"unencodable result: {exc}"})
            async with lock:
                aio.write(writer, frame)
                await writer.drain()

        try:
            while True:
                request = await read_frame(reader, self.max_frame)
                task = asyncio.create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except FrameError as exc:
            self.rejected += 1
            log.warning("rpc connection dropped", reason=str(exc))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in list(tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
