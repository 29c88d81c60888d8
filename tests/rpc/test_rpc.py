"""RPC on the shared server port: calls, concurrency, errors, and hostile input."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from consulpy.raft.transport import TcpTransport, split_address
from consulpy.rpc.client import RPCClient
from consulpy.rpc.codec import PROTO_RPC
from consulpy.rpc.errors import RPCError, RPCUnavailable
from consulpy.rpc.server import RPCServer


class Refused(Exception):
    pass


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[TcpTransport, RPCServer]]:
    server = RPCServer(max_frame=1024, error_kinds={Refused: "refused"})

    async def echo(args: object) -> object:
        return args

    async def slow(args: float) -> str:
        await asyncio.sleep(args)
        return "done"

    async def refuse(args: object) -> None:
        raise Refused("no, thanks")

    async def crash(args: object) -> None:
        raise RuntimeError("bug")

    for name, fn in (("echo", echo), ("slow", slow), ("refuse", refuse), ("crash", crash)):
        server.register(name, fn)
    transport = TcpTransport("127.0.0.1", 0)
    transport.register_protocol(PROTO_RPC, server.serve)
    await transport.start(lambda m, a: None)
    yield transport, server
    await transport.close()


async def test_calls_and_concurrency(served) -> None:
    transport, _ = served
    client = RPCClient()
    try:
        assert await client.call(transport.address, "echo", {"a": [1, b"x"]}) == {"a": [1, b"x"]}
        results = await asyncio.gather(
            client.call(transport.address, "slow", 0.2),
            *(client.call(transport.address, "echo", i) for i in range(50)),
        )
        assert results[0] == "done" and results[1:] == list(range(50))
    finally:
        await client.close()


async def test_errors_travel_by_kind(served) -> None:
    transport, _ = served
    client = RPCClient()
    try:
        with pytest.raises(RPCError) as err:
            await client.call(transport.address, "refuse")
        assert (err.value.kind, err.value.text) == ("refused", "no, thanks")
        with pytest.raises(RPCError) as err:
            await client.call(transport.address, "crash")
        assert err.value.kind == "internal"
        with pytest.raises(RPCError) as err:
            await client.call(transport.address, "nope")
        assert err.value.kind == "unknown_method"
        assert await client.call(transport.address, "echo", 1) == 1
    finally:
        await client.close()


async def test_unreachable_server(served) -> None:
    client = RPCClient(connect_timeout=1)
    with pytest.raises(RPCUnavailable):
        await client.call("127.0.0.1:1", "echo", 1)
    await client.close()


async def _raw(address: str, payload: bytes) -> bytes:
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_garbage_and_oversized_frames_are_dropped_and_server_keeps_serving(served) -> None:
    transport, server = served
    # garbage after the protocol byte
    assert await _raw(transport.address, bytes([PROTO_RPC]) + b"\x00\x00\x00\x05hello") == b""
    # an oversized length is refused before reading the body
    assert await _raw(transport.address, bytes([PROTO_RPC]) + struct.pack(">I", 1 << 30)) == b""
    # an unknown protocol byte
    assert await _raw(transport.address, b"\x7fwhatever") == b""
    assert server.rejected >= 2
    client = RPCClient()
    try:
        assert await client.call(transport.address, "echo", "still here") == "still here"
    finally:
        await client.close()


async def test_connection_loss_fails_calls_in_flight(served) -> None:
    transport, server = served
    arrived = asyncio.Event()

    async def park(_args: object) -> None:
        arrived.set()
        await asyncio.sleep(30)

    server.register("park", park)
    client = RPCClient()
    try:
        pending = asyncio.ensure_future(client.call(transport.address, "park", None))
        await asyncio.wait_for(arrived.wait(), 10)  # the request reached the server
        await transport.close()
        with pytest.raises(RPCUnavailable):
            await asyncio.wait_for(pending, 10)
    finally:
        await client.close()
