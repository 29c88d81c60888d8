"""A small HTTP/2 server built on `h2` for tests: answers PINGs (h2 does that itself) and
the gRPC health Check call with a configurable status per service. It lets the gRPC and
H2PING tests run where `grpcio` is not installed."""

from __future__ import annotations

import asyncio
import ssl
import struct

import h2.config
import h2.connection
import h2.events

from consulpy.agent.checks.grpc import HEALTH_CHECK_PATH, _read_varint


def _service_from(message: bytes) -> str:
    pos = 0
    while pos < len(message):
        tag, pos = _read_varint(message, pos)
        length, pos = _read_varint(message, pos)
        if tag == 0x0A:
            return message[pos : pos + length].decode()
        pos += length
    return ""


class H2TestServer:
    def __init__(self, statuses: dict[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.statuses = statuses
        self.tls = tls
        self.pings = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> H2TestServer:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        bodies: dict[int, bytes] = {}
        paths: dict[int, str] = {}
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.PingReceived):
                        self.pings += 1
                    elif isinstance(event, h2.events.RequestReceived):
                        paths[event.stream_id] = dict(event.headers).get(":path", "")
                        bodies[event.stream_id] = b""
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        self._answer(
                            conn, event.stream_id, paths[event.stream_id], bodies[event.stream_id]
                        )
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(
        self, conn: h2.connection.H2Connection, stream: int, path: str, body: bytes
    ) -> None:
        if path != HEALTH_CHECK_PATH:
            conn.send_headers(stream, [(":status", "404")], end_stream=True)
            return
        service = _service_from(body[5:])
        if service not in self.statuses:
            conn.send_headers(
                stream,
                [
                    (":status", "200"),
                    ("content-type", "application/grpc"),
                    ("grpc-status", "5"),
                    ("grpc-message", "unknown%20service"),
                ],
                end_stream=True,
            )
            return
        message = b"\x08" + bytes([self.statuses[service]])
        conn.send_headers(stream, [(":status", "200"), ("content-type", "application/grpc")])
        conn.send_data(stream, struct.pack(">BI", 0, len(message)) + message)
        conn.send_headers(stream, [("grpc-status", "0")], end_stream=True)
