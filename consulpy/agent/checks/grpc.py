"""gRPC checks: one `grpc.health.v1.Health/Check` call over HTTP/2 (via `h2`).

The health protocol's two messages each hold one field, so they are encoded by hand here
rather than pulling in protobuf: the request carries the service name (field 1, string), the
response the serving status (field 1, enum). Errors are worded like grpc-go's
(`rpc error: code = Unavailable desc = ...`) because that is what Consul shows.
"""

from __future__ import annotations

import asyncio
import struct
from urllib.parse import unquote

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.dial import DialError
from consulpy.agent.checks.h2client import (
    H2Client,
    H2ConnectionLost,
    goaway_text,
    header_dict,
)
from consulpy.agent.checks.runner import Result
from consulpy.agent.checks.status import CRITICAL, PASSING
from consulpy.agent.checks.tls import CheckTLS, client_context

HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"
SERVING = 1
SERVING_STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CODE_NAMES = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
]
# gRPC's mapping of HTTP statuses for responses that are not gRPC at all.
_HTTP_TO_CODE = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
MAX_RESPONSE = 1 << 20


class RPCError(Exception):
    def __init__(self, code: int, desc: str) -> None:
        name = CODE_NAMES[code] if 0 <= code < len(CODE_NAMES) else f"Code({code})"
        super().__init__(f"rpc error: code = {name} desc = {desc}")
        self.code = code


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def encode_request(service: str) -> bytes:
    """HealthCheckRequest{service} (proto3: an empty string is not encoded)."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def decode_response(data: bytes) -> int:
    """HealthCheckResponse.status; unknown fields are skipped, absent status is 0."""
    status, pos = 0, 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            if field == 1:
                status = value
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != len(data):
        raise ValueError("truncated message")
    return status


def frame_message(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def split_target(target: str) -> tuple[str, str]:
    """`host:port/service` -> (`host:port`, `service`); the service may contain slashes."""
    addr, _, service = target.partition("/")
    return addr, service


class GRPCProbe:
    def __init__(self, definition: CheckDefinition, *, agent_tls: CheckTLS | None = None):
        self.target = definition.grpc
        self.addr, self.service = split_target(definition.grpc)
        self.timeout = definition.timeout
        self.server_name = definition.tls_server_name
        self.tls = (
            client_context(
                skip_verify=definition.tls_skip_verify, agent_tls=agent_tls, alpn=("h2",)
            )
            if definition.grpc_use_tls
            else None
        )

    async def close(self) -> None:
        return None

    async def run(self) -> Result:
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._call()
        except TimeoutError:
            return CRITICAL, str(RPCError(4, "context deadline exceeded"))
        except RPCError as exc:
            return CRITICAL, str(exc)
        if status != SERVING:
            name = SERVING_STATUS_NAMES.get(status, str(status))
            return CRITICAL, f"gRPC {self.target} serving status: {name}"
        return PASSING, f"gRPC check {self.target}: success"

    async def _call(self) -> int:
        import h2.events
        import h2.exceptions

        try:
            client = await H2Client.connect(self.addr, tls=self.tls, server_name=self.server_name)
        except DialError as exc:
            raise RPCError(
                14, f'connection error: desc = "transport: Error while dialing: {exc}"'
            ) from None
        try:
            stream = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                stream,
                [
                    (":method", "POST"),
                    (":scheme", "https" if self.tls is not None else "http"),
                    (":path", HEALTH_CHECK_PATH),
                    (":authority", self.addr),
                    ("content-type", "application/grpc"),
                    ("te", "trailers"),
                    ("user-agent", "consulpy-health-check"),
                ],
            )
            client.conn.send_data(stream, frame_message(encode_request(self.service)))
            client.conn.end_stream(stream)
            await client.flush()
            headers: dict[str, str] = {}
            body = bytearray()
            while True:
                for event in await client.events():
                    if isinstance(event, h2.events.ConnectionTerminated):
                        raise H2ConnectionLost(goaway_text(event))
                    if getattr(event, "stream_id", stream) != stream:
                        continue
                    if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                        headers.update(header_dict(event.headers))
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        if len(body) > MAX_RESPONSE:
                            raise RPCError(8, "response larger than 1 MiB")
                        client.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                        await client.flush()
                    elif isinstance(event, h2.events.StreamReset):
                        raise RPCError(
                            13,
                            f"stream terminated by RST_STREAM with error code: {event.error_code}",
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        return _result(headers, bytes(body))
        except H2ConnectionLost as exc:
            raise RPCError(14, f"error reading from server: {exc}") from None
        except h2.exceptions.ProtocolError as exc:
            raise RPCError(14, f'connection error: desc = "http2: {exc}"') from None
        except OSError as exc:
            raise RPCError(14, f"error reading from server: {exc.strerror or exc}") from None
        finally:
            await client.close()


def _result(headers: dict[str, str], body: bytes) -> int:
    http_status = int(headers.get(":status", "0") or 0)
    if "grpc-status" not in headers:
        code = _HTTP_TO_CODE.get(http_status, 2)
        raise RPCError(code, f"unexpected HTTP status code received from server: {http_status}")
    code = int(headers["grpc-status"])
    if code != 0:
        raise RPCError(code, unquote(headers.get("grpc-message", "")))
    if len(body) < 5:
        raise RPCError(13, "server returned no response message")
    compressed, length = struct.unpack(">BI", body[:5])
    if compressed:
        raise RPCError(13, "compressed response without negotiated compression")
    try:
        return decode_response(body[5 : 5 + length])
    except ValueError as exc:
        raise RPCError(13, f"failed to unmarshal the received message: {exc}") from None
