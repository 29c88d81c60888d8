"""limits.rpc_handshake_timeout: a connection to the server port that sends no protocol byte
is closed by the server once the timeout passes (the default, 5 s, applies as well)."""

from __future__ import annotations

import asyncio
import re

from tests.ops.procs import DEV, start

SERVER_ADDR = re.compile(r"Server Addr: \S+ \(bound: (\d+\.\d+\.\d+\.\d+):(\d+)\)")


async def test_a_silent_connection_is_closed_after_the_handshake_timeout() -> None:
    agent = start(*DEV, "-hcl", 'limits { rpc_handshake_timeout = "500ms" }')
    try:
        match = SERVER_ADDR.search(agent.output())
        assert match, agent.output()
        reader, writer = await asyncio.open_connection(match.group(1), int(match.group(2)))
        try:
            # the server closes it; the 30 s here is only the test's own guard
            assert await asyncio.wait_for(reader.read(), 30) == b""
        finally:
            writer.close()
    finally:
        agent.stop()
