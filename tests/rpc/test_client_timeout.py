"""limits.rpc_client_timeout: a client agent's call to a server that accepts the connection and
never answers fails after that time instead of hanging; 0 means no limit (the call waits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from consulpy.agent.client import ClientDelegate
from consulpy.server.endpoints.request import Empty
from consulpy.server.errors import CommandError


@dataclass
class _Member:
    addr: str
    tags: dict[str, str] = field(default_factory=dict)


class _Gossip:
    def __init__(self, port: int) -> None:
        self.port = port

    def servers(self) -> list[_Member]:
        return [_Member("127.0.0.1", {"port": str(self.port)})]


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP listener on 127.0.0.1 that reads requests and never answers."""
    conns: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in conns:
            writer.close()
        server.close()
        await server.wait_closed()


async def _delegate(port: int, timeout: float) -> Any:
    return ClientDelegate(_Gossip(port), rpc_hold_timeout=0.5, rpc_client_timeout=timeout)  # type: ignore[arg-type]


async def test_a_write_to_a_silent_server_times_out(silent_server: int) -> None:
    delegate = await _delegate(silent_server, 0.3)
    try:
        with pytest.raises(CommandError, match="timed out"):
            await asyncio.wait_for(delegate.apply("KVS.Apply", Empty()), 60)
    finally:
        await delegate.close()


async def test_zero_means_no_limit(silent_server: int) -> None:
    delegate = await _delegate(silent_server, 0)
    try:
        call = asyncio.ensure_future(delegate.apply("KVS.Apply", Empty()))
        # still waiting for its answer when the test gives up on it (a bug here would fail
        # at once: the call cannot end any other way)
        done, _ = await asyncio.wait({call}, timeout=1.0)
        assert not done
        call.cancel()
    finally:
        await delegate.close()
