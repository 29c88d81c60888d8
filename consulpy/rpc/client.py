"""The RPC client: one multiplexed connection per server address, reconnected on demand.

Calls in flight when a connection breaks fail with RPCUnavailable; the caller decides whether
to retry elsewhere (reads) or to report (writes: the outcome may be unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from typing import Any

from consulpy.rpc.codec import MAX_FRAME, PROTO_RPC, FrameError, encode, read_frame
from consulpy.rpc.errors import RPCDialError, RPCError, RPCUnavailable
from consulpy.util import aio
from consulpy.util.hostport import split_host_port


class _Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.max_frame = max_frame
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = False
        self.reader_task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        error = "connection closed"
        try:
            while True:
                reply = await read_frame(self.reader, self.max_frame)
                future = self.pending.pop(reply["s"], None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, FrameError) as exc:
            error = str(exc) or type(exc).__name__
        finally:
            self.close(error)

    def close(self, reason: str = "connection closed") -> None:
        if self.closed:
            return
        self.closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(RPCUnavailable(f"rpc connection lost: {reason}"))
        self.pending.clear()
        self.writer.close()


class RPCClient:
    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 5.0,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.max_frame = max_frame
        self._conns: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Future[_Connection]] = {}
        self._seq = itertools.count(1)

    async def _connection(self, address: str) -> _Connection:
        conn = self._conns.get(address)
        if conn is not None and not conn.closed:
            return conn
        pending = self._connecting.get(address)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self._connecting[address] = future
        try:
            host, port = split_host_port(address)
            kwargs: dict[str, Any] = {}
            if self.ssl_context is not None:
                kwargs["ssl"] = self.ssl_context
                kwargs["server_hostname"] = self.server_hostname or host
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, **kwargs), self.connect_timeout
            )
            writer.write(bytes([PROTO_RPC]))
            conn = _Connection(reader, writer, self.max_frame)
            self._conns[address] = conn
            future.set_result(conn)
            return conn
        except (OSError, TimeoutError, ssl.SSLError, ValueError) as exc:
            error = RPCDialError(f"rpc error dialing {address}: {exc or type(exc).__name__}")
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise error from exc
        finally:
            self._connecting.pop(address, None)

    async def call(
        self, address: str, method: str, args: Any = None, timeout: float | None = None
    ) -> Any:
        conn = await self._connection(address)
        seq = next(self._seq)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[seq] = future
        try:
            aio.write(conn.writer, encode({"s": seq, "m": method, "a": args}))
            await conn.writer.drain()
        except (ConnectionError, OSError) as exc:
            conn.close(str(exc))
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            conn.pending.pop(seq, None)
            raise RPCUnavailable(f"rpc {method} to {address} timed out") from exc
        if "e" in reply:
            raise RPCError(reply["e"], reply.get("t", ""))
        return reply.get("r")

    async def close(self) -> None:
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            conn.close()
            conn.reader_task.cancel()
        for conn in conns.values():
            with contextlib.suppress(BaseException):
                await conn.reader_task
