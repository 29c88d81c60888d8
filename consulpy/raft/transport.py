"""Raft transport over asyncio TCP (optionally TLS): length-prefixed msgpack frames.

Every connection begins with one protocol byte. 0x01 is Raft; register_protocol() lets another
protocol (consulpy's RPC) share the same listener on another byte. A Raft connection is one-way:
the dialer streams frames and never reads; answers travel on the answerer's own connection. Each
frame is a 4-byte big-endian length then msgpack [sender's advertised address, [message, ...]]
(several messages queued together leave as one frame, one write; the address lets a new server
answer a leader it has no configuration for yet). The advertised address is never the bound one
when that is 0.0.0.0 or [::]: a peer answering "0.0.0.0:8300" would be talking to itself.
Frames above max_frame_size close the connection before anything is allocated for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgpack

from consulpy.raft import trace
from consulpy.raft.types import Message, MsgType, decode_message, encode_message

PROTO_RAFT = 0x01
DEFAULT_MAX_FRAME = 64 << 20
_LEN = struct.Struct(">I")

ProtocolHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
MessageHandler = Callable[[Message, str | None], None]


class Transport(Protocol):
    """What RaftNode needs from a transport."""

    @property
    def address(self) -> str:
        """The host:port peers reach this node at (valid after start())."""
        ...

    async def start(self, on_message: MessageHandler) -> None: ...
    def send(self, address: str, message: Message) -> None: ...
    async def close(self) -> None: ...


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad address {address!r}, expected host:port")
    return host.strip("[]"), int(port)


def join_address(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_unspecified(host: str) -> bool:
    return host.strip("[]") in ("", "0.0.0.0", "::", "0:0:0:0:0:0:0:0")


class _Peer:
    """The outbound stream to one address, with its queue, reconnects and backoff."""

    def __init__(self, transport: TcpTransport, address: str) -> None:
        self.t = transport
        self.address = address
        self.queue: deque[Message] = deque()
        self.wakeup = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"raft-peer-{address}")
        self.connected = False
        self.writer: asyncio.StreamWriter | None = None  # while connected

    def push(self, m: Message) -> None:
        self.queue.append(m)
        while len(self.queue) > self.t.queue_limit:
            self.queue.popleft()  # Raft tolerates loss; stale messages are the least useful
        self.t._pending(self)

    def flush(self) -> None:
        """Write what is queued now, when the connection takes it without waiting; else the
        pump task does (connecting, or waiting for a full buffer to drain)."""
        if not self.queue:
            return
        w = self.writer
        if w is None or w.transport.is_closing() or w.transport.get_write_buffer_size():
            self.wakeup.set()
            return
        self._write_batch(w)
        if self.queue:
            self.wakeup.set()

    async def _run(self) -> None:
        backoff = self.t.min_backoff
        while True:
            writer = None
            try:
                writer = await self._connect()
                self.connected = True
                backoff = self.t.min_backoff
                self.writer = writer
                await self._pump(writer)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
                pass
            finally:
                self.connected = False
                self.writer = None
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
            # Messages queued while disconnected are mostly stale: keep only the newest few.
            while len(self.queue) > 64:
                self.queue.popleft()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self.t.max_backoff)
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()

    async def _connect(self) -> asyncio.StreamWriter:
        host, port = split_address(self.address)
        kwargs: dict = {}
        if self.t.client_ssl is not None:
            kwargs["ssl"] = self.t.client_ssl
            kwargs["server_hostname"] = self.t.server_hostname or host
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, **kwargs), self.t.connect_timeout
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(bytes([PROTO_RAFT]))
        return writer

    async def _pump(self, writer: asyncio.StreamWriter) -> None:
        while True:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                if not self.queue:
                    continue  # flushed meanwhile
            if writer.transport.is_closing():  # uvloop raises on a write to it
                raise ConnectionResetError("connection closed")
            self._write_batch(writer)
            await writer.drain()

    def _write_batch(self, writer: asyncio.StreamWriter) -> None:
        """Queued messages, oldest first, as one frame (up to half the frame limit)."""
        limit = self.t.max_frame_size
        while self.queue:
            batch: list = []
            sent: list[Message] = []
            size = 0
            while self.queue:
                m = self.queue[0]
                raw = encode_message(m)
                est = len(m.data) + sum(len(e.data) + 24 for e in m.entries) + 128
                if batch and size + est > limit // 2:
                    break
                self.queue.popleft()
                batch.append(raw)
                sent.append(m)
                size += est
            payload = msgpack.packb([self.t._address, batch])
            if len(payload) > limit:
                continue  # a single message too large for any peer: drop it
            writer.write(_LEN.pack(len(payload)) + payload)
            if trace.ENABLED:
                _trace_sent(sent)
            return


def _trace_sent(sent: list[Message]) -> None:
    for m in sent:
        if m.type is MsgType.APPEND and m.entries:
            trace.mark("ae_sent", m.entries[-1].index)
        elif m.type is MsgType.APPEND_RESP and not m.reject:
            trace.mark("ack_sent", m.index)


class TcpTransport:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        queue_limit: int = 8192,
        connect_timeout: float = 2.0,
        min_backoff: float = 0.02,
        max_backoff: float = 1.0,
        advertise: str | None = None,
        handshake_timeout: float = 0.0,
    ) -> None:
        """advertise: the host:port peers dial and that every frame names as its sender
        (port 0: the bound port). Needed when binding 0.0.0.0/[::]; default: the bound address.
        handshake_timeout: limits.rpc_handshake_timeout, how long an inbound connection may
        take for its TLS handshake and its protocol byte (0: no limit)."""
        if advertise is not None:
            adv_host, _ = split_address(advertise)
            if _is_unspecified(adv_host):
                raise ValueError(f"cannot advertise {advertise!r}: peers cannot dial it")
        self.advertise = advertise
        self.host = host
        self.port = port
        self._sock = sock
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.server_hostname = server_hostname
        self.max_frame_size = max_frame_size
        self.queue_limit = queue_limit
        self.connect_timeout = connect_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.handshake_timeout = handshake_timeout
        self._handlers: dict[int, ProtocolHandler] = {}
        self._on_message: MessageHandler | None = None
        self._server: asyncio.base_events.Server | None = None
        self._peers: dict[str, _Peer] = {}
        self._conns: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._address: str | None = None
        self._bound: str | None = None
        self._unflushed: list[_Peer] = []

    @property
    def address(self) -> str:
        """host:port peers reach us at: the advertised address (valid after start())."""
        if self._address is None:
            raise RuntimeError("transport not started")
        return self._address

    @property
    def bound_address(self) -> str:
        """host:port actually bound (valid after start()); may be 0.0.0.0:port."""
        if self._bound is None:
            raise RuntimeError("transport not started")
        return self._bound

    def register_protocol(self, byte: int, handler: ProtocolHandler) -> None:
        """Route connections whose first byte is `byte` to handler(reader, writer)."""
        if not 0 <= byte <= 255 or byte == PROTO_RAFT:
            raise ValueError(f"protocol byte {byte} is invalid or reserved for Raft")
        self._handlers[byte] = handler

    async def start(self, on_message: MessageHandler) -> None:
        self._on_message = on_message
        if self._sock is None and self.advertise is None and _is_unspecified(self.host):
            raise ValueError(f"binding {self.host!r} needs an advertise address peers can dial")
        if self._sock is not None:
            self._server = await asyncio.start_server(
                self._accept, sock=self._sock, **self._server_options()
            )
        else:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, **self._server_options()
            )
        bound = self._server.sockets[0].getsockname()
        self._bound = join_address(bound[0], bound[1])
        if self.advertise is None:
            if _is_unspecified(bound[0]):
                self._server.close()
                raise ValueError(
                    f"bound to {self._bound}, which peers cannot dial: give an advertise address"
                )
            self._address = self._bound
        else:
            adv_host, adv_port = split_address(self.advertise)
            # Verbatim when complete: peers compare addresses as strings.
            self._address = self.advertise if adv_port else join_address(adv_host, bound[1])

    def _server_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ssl": self.server_ssl}
        if self.server_ssl is not None and self.handshake_timeout > 0:
            options["ssl_handshake_timeout"] = self.handshake_timeout
        return options

    def send(self, address: str, message: Message) -> None:
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers[address] = _Peer(self, address)
        peer.push(message)

    def _pending(self, peer: _Peer) -> None:
        """A peer has queued messages: write them at the end of this loop pass at the
        latest (the node calls flush() itself once its round of output is queued)."""
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self.flush)
        if peer not in self._unflushed:
            self._unflushed.append(peer)

    def flush(self) -> None:
        """Write every queued message whose connection is ready for it, now."""
        peers, self._unflushed = self._unflushed, []
        for peer in peers:
            peer.flush()

    def forget(self, address: str) -> None:
        """Stop dialing an address (a server that left the configuration)."""
        peer = self._peers.pop(address, None)
        if peer is not None:
            peer.task.cancel()

    def connected(self, address: str) -> bool:
        peer = self._peers.get(address)
        return peer is not None and peer.connected

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        try:
            first = await asyncio.wait_for(reader.readexactly(1), self.handshake_timeout or None)
            if first[0] == PROTO_RAFT:
                await self._serve_raft(reader)
            else:
                handler = self._handlers.get(first[0])
                if handler is not None:
                    await handler(reader, writer)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            OSError,
            ssl.SSLError,
            TimeoutError,
        ):
            pass
        finally:
            self._conns.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_raft(self, reader: asyncio.StreamReader) -> None:
        while True:
            (length,) = _LEN.unpack(await reader.readexactly(4))
            if length > self.max_frame_size:
                return  # refuse before allocating: close the connection
            payload = await reader.readexactly(length)
            try:
                src_address, batch = msgpack.unpackb(payload)
                messages = [decode_message(raw) for raw in batch]
                if src_address is not None and not isinstance(src_address, str):
                    raise ValueError("bad sender address")
            except (ValueError, TypeError, KeyError, msgpack.UnpackException):
                return  # malformed: drop the connection, the sender reconnects
            if self._on_message is not None:
                for m in messages:
                    self._on_message(m, src_address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in self._peers.values():
            peer.task.cancel()
        # Abort inbound connections rather than cancelling their tasks: the handlers then end
        # normally (cancelling a start_server handler task makes asyncio log an error).
        tasks = [p.task for p in self._peers.values()] + list(self._conns)
        for w in self._conns.values():
            w.transport.abort()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        self._peers.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
