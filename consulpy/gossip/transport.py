"""UDP and TCP on one port: the sockets memberlist speaks over.

The transport only moves bytes: datagrams up to 64 KiB in, streams read until one complete
message parses (bounded in size and time). Wrapping and unwrapping (label, encryption, CRC,
compression) is ``wire``'s job; deciding what to send is the core's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

from consulpy.gossip import wire
from consulpy.gossip.codec import DecodeError
from consulpy.gossip.wire import NeedMore, Security, StreamMessage

log = logging.getLogger("consulpy.gossip")

Addr = tuple[str, int]
READ_CHUNK = 65536


def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """`writer.write` that fails as ConnectionResetError on every loop once the connection is
    gone (uvloop raises RuntimeError; asyncio drops the bytes). Kept here, not shared from
    consulpy.util, because the gossip package imports nothing else of consulpy."""
    if writer.transport.is_closing():
        raise ConnectionResetError("connection closed")
    writer.write(data)


class StreamError(Exception):
    """A TCP exchange with a peer failed (connect, timeout, bad framing, remote error)."""


class ConnectionRefused(StreamError):
    """The peer's host refused the connection: nothing listens on that port."""


async def read_message(
    reader: asyncio.StreamReader,
    sec: Security,
    deadline: float,
    limit: int = wire.MAX_PUSH_STATE_BYTES + 4096,
) -> StreamMessage:
    """Read exactly one stream message, whatever its framing, before ``deadline``."""
    loop = asyncio.get_running_loop()
    buf = b""
    while True:
        if buf:
            try:
                msg, _used = wire.parse_stream(buf, sec)
                return msg
            except NeedMore:
                pass
            except (wire.WireError, DecodeError) as exc:
                raise StreamError(str(exc)) from exc
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise StreamError("i/o timeout")
        try:
            chunk = await asyncio.wait_for(reader.read(READ_CHUNK), remaining)
        except TimeoutError:
            raise StreamError("i/o timeout") from None
        except OSError as exc:
            raise StreamError(str(exc)) from exc
        if not chunk:
            raise StreamError(
                "connection closed before a complete message" if buf else "connection closed"
            )
        buf += chunk
        if len(buf) > limit:
            raise StreamError("remote message exceeds the size limit")


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, Addr], None]) -> None:
        self.on_packet = on_packet
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.on_packet(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class Transport:
    """Binds UDP and TCP on the same address and port (port 0: one the OS picks)."""

    def __init__(
        self,
        host: str,
        port: int,
        on_packet: Callable[[bytes, Addr], None],
        on_stream: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        self.host = host
        self.port = port
        self._on_packet = on_packet
        self._on_stream = on_stream
        self._udp: _UDP | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        # With port 0, TCP picks first (a busy machine's outgoing connections hold many TCP
        # ports, few UDP ones), then UDP takes the same number; retry if UDP has it.
        for _ in range(50 if self.port == 0 else 1):
            udp_sock = socket.socket(
                socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
            )
            tcp = None
            try:
                tcp = await asyncio.start_server(
                    self._on_stream, self.host, self.port, reuse_address=True, backlog=128
                )
                port = tcp.sockets[0].getsockname()[1]
                udp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 * 1024 * 1024)
                udp_sock.bind((self.host, port))
            except OSError as exc:
                udp_sock.close()
                if tcp is not None:
                    tcp.close()
                    await tcp.wait_closed()
                last = exc
                continue
            proto = _UDP(self._on_packet)
            await loop.create_datagram_endpoint(lambda p=proto: p, sock=udp_sock)
            self._udp = proto
            self._tcp = tcp
            self.port = port
            return port
        raise OSError(f"cannot bind gossip port on {self.host}:{self.port}: {last}")

    def sendto(self, data: bytes, addr: Addr) -> None:
        if self._udp is not None and self._udp.transport is not None:
            try:
                self._udp.transport.sendto(data, addr)
            except OSError as exc:
                log.debug("udp send to %s failed: %s", addr, exc)

    async def close(self) -> None:
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)


async def exchange(
    addr: Addr, payload: bytes, sec: Security, budget: float, expect_reply: bool = True
) -> StreamMessage | None:
    """Open a stream, send one framed message, optionally read one reply."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), budget)
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(f"dial {addr[0]}:{addr[1]}: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise StreamError(f"dial {addr[0]}:{addr[1]}: {exc or 'timeout'}") from None
    try:
        write(writer, payload)
        await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
        if not expect_reply:
            return None
        msg = await read_message(reader, sec, deadline)
        if msg.type == wire.MsgType.ERR:
            raise StreamError(f"remote error: {msg.error}")
        return msg
    except (OSError, TimeoutError) as exc:
        raise StreamError(f"{addr[0]}:{addr[1]}: {exc or 'i/o timeout'}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
