"""A minimal asyncio driver for the sans-I/O `h2` HTTP/2 state machine.

Enough for the two checks that speak HTTP/2: a PING round trip (H2PING) and one unary gRPC
call. `h2` is imported lazily so the rest of the check package works without it; `available()`
lets the factory refuse these check types with a clear error instead.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from consulpy.agent.checks.dial import close_writer, dial_tcp
from consulpy.util import aio


def available() -> bool:
    try:
        import h2.connection  # noqa: F401
    except ImportError:
        return False
    return True


class H2ConnectionLost(Exception):
    """The peer closed the connection (or sent GOAWAY before we were done)."""


def goaway_text(event: Any) -> str:
    return f"received GOAWAY (error code {event.error_code})"


class H2Client:
    """One client HTTP/2 connection: open, exchange frames, close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h2.config
        import h2.connection

        self.reader = reader
        self.writer = writer
        self.conn: Any = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()

    @classmethod
    async def connect(
        cls, addr: str, *, tls: ssl.SSLContext | None, server_name: str = ""
    ) -> H2Client:
        """Dial (raises DialError) and send the connection preface and SETTINGS."""
        reader, writer = await dial_tcp(addr, tls=tls, server_name=server_name)
        client = cls(reader, writer)
        await client.flush()
        return client

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            aio.write(self.writer, data)
            await self.writer.drain()

    async def events(self) -> list[Any]:
        """Read until h2 yields events (a GOAWAY arrives as ConnectionTerminated, in order
        with the rest); raises H2ConnectionLost when the peer closes the socket."""
        while True:
            data = await self.reader.read(65536)
            if not data:
                raise H2ConnectionLost("EOF")
            events = self.conn.receive_data(data)
            await self.flush()  # SETTINGS and PING acknowledgements
            if events:
                return list(events)

    async def close(self) -> None:
        with suppress(Exception):
            self.conn.close_connection()
            aio.write(self.writer, self.conn.data_to_send())
        await close_writer(self.writer)


def header_dict(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers}
