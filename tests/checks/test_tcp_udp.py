"""TCP (plain and TLS) and UDP checks against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

from consulpy.agent.checks import make_runner
from consulpy.util.ports import free_port, refusing_port
from tests.checks.support import Recorder, ZeroRandom, fast, make_tls


async def run_once(body: dict) -> tuple[str, str]:
    rec = Recorder()
    runner = make_runner("c", fast({"Name": "c", "Interval": "10s", **body}), rec, rng=ZeroRandom())
    await runner.start()
    try:
        return await rec.first()
    finally:
        await runner.stop()


async def test_tcp_connect_success_and_refused() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await run_once({"TCP": f"127.0.0.1:{port}"}) == (
            "passing",
            f"TCP connect 127.0.0.1:{port}: Success",
        )
    with refusing_port() as closed:
        assert await run_once({"TCP": f"127.0.0.1:{closed}"}) == (
            "critical",
            f"dial tcp 127.0.0.1:{closed}: connect: connection refused",
        )


async def test_tcp_bad_address() -> None:
    assert await run_once({"TCP": "127.0.0.1"}) == (
        "critical",
        "dial tcp: address 127.0.0.1: missing port in address",
    )


async def test_tcp_tls_handshake(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    server = await asyncio.start_server(
        lambda r, w: w.close(), "127.0.0.1", 0, ssl=tls.server_context()
    )
    port = server.sockets[0].getsockname()[1]
    async with server:
        body = {"TCP": f"127.0.0.1:{port}", "TCPUseTLS": True}
        status, output = await run_once(body)
        assert status == "critical" and output.startswith("tls: failed to verify certificate")
        assert await run_once({**body, "TLSSkipVerify": True}) == (
            "passing",
            f"TCP+TLS connect 127.0.0.1:{port}: Success",
        )


async def test_tcp_tls_against_a_plain_server_times_out() -> None:
    """A listener that never answers the ClientHello: the handshake runs into the timeout."""

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        status, output = await run_once(
            {"TCP": f"127.0.0.1:{port}", "TCPUseTLS": True, "Timeout": "200ms"}
        )
    assert (status, output) == ("critical", f"dial tcp 127.0.0.1:{port}: i/o timeout")


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(b"pong", addr)


async def test_udp_reply_silence_and_port_unreachable() -> None:
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        addr = f"127.0.0.1:{echo.get_extra_info('sockname')[1]}"
        assert await run_once({"UDP": addr}) == ("passing", f"UDP connect {addr}: Success")
        addr = f"127.0.0.1:{silent.get_extra_info('sockname')[1]}"
        assert await run_once({"UDP": addr, "Timeout": "100ms"}) == (
            "passing",
            f"UDP connect {addr}: Success",
        )
    finally:
        echo.close()
        silent.close()
    closed = free_port(udp=True)  # UDP refuses only where nothing is bound at all
    status, output = await run_once({"UDP": f"127.0.0.1:{closed}", "Timeout": "5s"})
    assert status == "critical"
    assert output.startswith("read udp 127.0.0.1:")
    assert output.endswith(f"->127.0.0.1:{closed}: read: connection refused")
