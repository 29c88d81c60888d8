"""gRPC health checks and H2PING checks, against grpcio's server (the reference
implementation, a dependency) and against a small `h2` server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from consulpy.agent.checks import CheckTLS, make_runner
from consulpy.agent.checks.grpc import decode_response, encode_request, split_target
from consulpy.util.ports import refusing_port
from tests.checks.h2server import H2TestServer
from tests.checks.support import Recorder, ZeroRandom, fast, make_tls

SERVING, NOT_SERVING = 1, 2
STATUSES = {"": SERVING, "good": SERVING, "bad": NOT_SERVING, "a/b": SERVING}


async def run_once(body: dict, **kw) -> tuple[str, str]:
    rec = Recorder()
    defn = fast({"Name": "g", "Interval": "10s", **body})
    runner = make_runner("g", defn, rec, rng=ZeroRandom(), **kw)
    await runner.start()
    try:
        return await rec.first()
    finally:
        await runner.stop()


def test_health_messages_round_trip() -> None:
    assert encode_request("") == b""
    assert encode_request("svc") == b"\x0a\x03svc"
    assert decode_response(b"") == 0
    assert decode_response(b"\x08\x02") == 2
    assert decode_response(b"\x12\x01x\x08\x01") == 1  # unknown field skipped
    assert split_target("127.0.0.1:5/a/b") == ("127.0.0.1:5", "a/b")


# ---------------------------------------------------------------- grpcio reference server


@pytest_asyncio.fixture(params=["plain", "tls"])
async def grpc_server(request, tmp_path: Path) -> AsyncIterator[tuple[str, bool]]:
    import grpc

    async def check(req: bytes, context) -> bytes:
        service = _service(req)
        if service not in STATUSES:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return b"\x08" + bytes([STATUSES[service]])

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    use_tls = request.param == "tls"
    if use_tls:
        tls = make_tls(tmp_path, ("localhost",))
        creds = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())]
        )
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", use_tls
    await server.stop(None)


def _service(req: bytes) -> str:
    return req[2:].decode() if req else ""


def _tls_body(use_tls: bool) -> dict:
    return {"GRPCUseTLS": True, "TLSSkipVerify": True} if use_tls else {}


async def test_grpcio_serving_and_not_serving(grpc_server) -> None:
    addr, use_tls = grpc_server
    assert await run_once({"GRPC": addr, **_tls_body(use_tls)}) == (
        "passing",
        f"gRPC check {addr}: success",
    )
    assert await run_once({"GRPC": addr + "/good", **_tls_body(use_tls)}) == (
        "passing",
        f"gRPC check {addr}/good: success",
    )
    assert await run_once({"GRPC": addr + "/bad", **_tls_body(use_tls)}) == (
        "critical",
        f"gRPC {addr}/bad serving status: NOT_SERVING",
    )
    assert await run_once({"GRPC": addr + "/nope", **_tls_body(use_tls)}) == (
        "critical",
        "rpc error: code = NotFound desc = unknown service",
    )


@pytest.mark.parametrize("grpc_server", ["tls"], indirect=True)
async def test_grpcio_tls_verification(grpc_server) -> None:
    addr, _ = grpc_server
    status, output = await run_once({"GRPC": addr, "GRPCUseTLS": True})
    assert status == "critical"
    assert output.startswith("rpc error: code = Unavailable desc = connection error")
    assert "x509" in output


async def test_h2ping_against_grpcio(grpc_server) -> None:
    addr, use_tls = grpc_server
    body = {"H2PING": addr, "H2PingUseTLS": use_tls}
    if use_tls:
        body["TLSSkipVerify"] = True
    assert await run_once(body) == ("passing", "HTTP2 ping was successful")


# ---------------------------------------------------------------- h2 test server


async def test_h2_server_grpc_and_ping(tmp_path: Path) -> None:
    async with H2TestServer(STATUSES) as srv:
        addr = f"127.0.0.1:{srv.port}"
        assert await run_once({"GRPC": addr + "/a/b"}) == (
            "passing",
            f"gRPC check {addr}/a/b: success",
        )
        assert await run_once({"GRPC": addr + "/bad"}) == (
            "critical",
            f"gRPC {addr}/bad serving status: NOT_SERVING",
        )
        assert await run_once({"GRPC": addr + "/zzz"}) == (
            "critical",
            "rpc error: code = NotFound desc = unknown service",
        )
        assert await run_once({"H2PING": addr, "H2PingUseTLS": False}) == (
            "passing",
            "HTTP2 ping was successful",
        )
        assert srv.pings == 1
    tls = make_tls(tmp_path, ("check.example",))
    async with H2TestServer(STATUSES, tls=tls.server_context(alpn=("h2",))) as srv:
        addr = f"127.0.0.1:{srv.port}"
        assert await run_once({"H2PING": addr, "TLSSkipVerify": True}) == (
            "passing",
            "HTTP2 ping was successful",
        )
        status, output = await run_once({"H2PING": addr})
        assert status == "critical"
        assert output.startswith(f"Failed to dial to {addr}: tls: failed to verify certificate")
        # verified against the agent's CA, under the certificate's name
        trusted = CheckTLS(ca_file=str(tls.ca_file))
        named = {"TLSServerName": "check.example"}
        assert await run_once({"H2PING": addr, **named}, agent_tls=trusted) == (
            "passing",
            "HTTP2 ping was successful",
        )
        assert await run_once(
            {"GRPC": addr + "/good", "GRPCUseTLS": True, **named}, agent_tls=trusted
        ) == ("passing", f"gRPC check {addr}/good: success")


async def test_connection_failures() -> None:
    with refusing_port() as port:
        assert await run_once({"GRPC": f"127.0.0.1:{port}"}) == (
            "critical",
            'rpc error: code = Unavailable desc = connection error: desc = "transport: Error '
            f'while dialing: dial tcp 127.0.0.1:{port}: connect: connection refused"',
        )
        assert await run_once({"H2PING": f"127.0.0.1:{port}", "H2PingUseTLS": False}) == (
            "critical",
            f"Failed to dial to 127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connect: "
            "connection refused",
        )


async def test_http1_server_is_not_http2() -> None:
    import asyncio

    async def http1(reader, writer) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        status, output = await run_once({"H2PING": f"127.0.0.1:{port}", "H2PingUseTLS": False})
        assert status == "critical" and output.startswith("HTTP2 ping failed: ")
        status, output = await run_once({"GRPC": f"127.0.0.1:{port}"})
        assert status == "critical" and output.startswith("rpc error: code = Unavailable")


async def test_timeouts() -> None:
    import asyncio

    async def silent(reader, writer) -> None:
        await reader.read()  # read the preface and never answer
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        addr = f"127.0.0.1:{port}"
        assert await run_once({"GRPC": addr, "Timeout": "200ms"}) == (
            "critical",
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        )
        assert await run_once({"H2PING": addr, "H2PingUseTLS": False, "Timeout": "200ms"}) == (
            "critical",
            "HTTP2 ping failed: context deadline exceeded",
        )
