"""limits.rpc_max_conns_per_client: a server keeps at most that many RPC connections open per
client IP; the next one is closed at once, and a slot freed by a closing connection is usable
again. A reload changes the limit for new connections."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consulpy.rpc.client import RPCClient
from consulpy.rpc.errors import RPCUnavailable
from consulpy.server.endpoints.request import Empty, Request
from consulpy.testing import DevAgent
from tests.helpers import eventually


def _status_call() -> dict[str, Any]:
    request = Request(payload=Empty(), datacenter="dc1", token="")
    return {"req": request.to_wire(), "hops": 0}


async def test_connections_beyond_the_limit_are_closed() -> None:
    async with DevAgent(config={"limits": {"rpc_max_conns_per_client": 2}}) as dev:
        assert dev.agent is not None and dev.agent.server is not None
        server = dev.agent.server
        address = server.rpc_address
        clients = [RPCClient() for _ in range(3)]
        try:
            for client in clients[:2]:
                info = await client.call(address, "Status.Info", _status_call(), timeout=30)
                assert info
            with pytest.raises(RPCUnavailable):
                await clients[2].call(address, "Status.Info", _status_call(), timeout=30)
            assert server.rpc_server.refused_conns == 1

            # a closed connection frees its slot
            await clients[0].close()
            await eventually(lambda: server.rpc_server.conns_by_ip.get("127.0.0.1") == 1)
            assert await clients[2].call(address, "Status.Info", _status_call(), timeout=30)

            # a reload lifts the limit (0: unlimited) for the next connections
            agent = dev.agent
            new = dataclasses.replace(
                agent.config,
                limits=dataclasses.replace(agent.config.limits, rpc_max_conns_per_client=0),
            )
            agent.config = new
            for hook in agent.reload_hooks:
                hook(new)
            more = [RPCClient() for _ in range(3)]
            clients += more
            for client in more:
                assert await client.call(address, "Status.Info", _status_call(), timeout=30)
        finally:
            for client in clients:
                await client.close()
