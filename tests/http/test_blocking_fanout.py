"""Members of a shared blocking query answered straight from the driver's pass (http/fanout.py):
each gets byte for byte what its handler would have sent (headers, `http_config` response
headers, body), its keep-alive connection keeps working, and requests the pass must not answer
(HTTP/1.0, `Connection: close`, `?peer`, a different `?filter`) are answered by their handler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from consulpy.server.blocking import SharedWaits
from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually
from tests.http.test_shared_blocking import register, waits

WATCHERS = 12
EXTRA = {"X-Frame-Options": "DENY", "X-Note": "fan-out"}


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(config={"http_config": {"response_headers": EXTRA}}) as dev:
        yield dev


@pytest_asyncio.fixture
async def http(agent: DevAgent) -> AsyncIterator[HTTP]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield HTTP(session, agent.url)


class Raw:
    """One raw HTTP connection: what a client reads off the socket, framing included."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, agent: DevAgent) -> Raw:
        host, port = agent.url.removeprefix("http://").rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def get(self, path: str, version: str = "1.1", extra: str = "") -> None:
        self.writer.write(f"GET {path} HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode())
        await self.writer.drain()

    async def response(self) -> tuple[str, dict[str, str], bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")[:-2]
        headers = dict(line.split(": ", 1) for line in lines)
        body = await self.reader.readexactly(int(headers["Content-Length"]))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


async def current_index(http: HTTP, path: str) -> int:
    _, headers, _ = await http.get(path)
    return int(headers["X-Consul-Index"])


async def parked(shared: SharedWaits, n: int) -> None:
    await eventually(lambda: shared.waiting() == n, timeout=30, what=f"{n} watchers parked")


async def test_fanout_answers_are_the_handlers_answer_and_keep_alive_holds(
    agent: DevAgent, http: HTTP
) -> None:
    await register(http, "passing")
    index = await current_index(http, "/v1/health/service/web")
    shared = waits(agent)
    early = shared.early_answers
    conns = [await Raw.open(agent) for _ in range(WATCHERS)]
    try:
        for conn in conns:
            await conn.get(f"/v1/health/service/web?index={index}&wait=60s")
        await parked(shared, WATCHERS)

        await register(http, "critical")
        answers = [await conn.response() for conn in conns]
        assert shared.early_answers - early == WATCHERS
        alone = Raw(*await asyncio.open_connection(*conns[0].writer.get_extra_info("peername")))
        await alone.get("/v1/health/service/web")
        reference = await alone.response()
        alone.close()
        without_date = {k: v for k, v in reference[1].items() if k != "Date"}
        for status, headers, body in answers:
            assert status == "HTTP/1.1 200 OK"
            assert {k: v for k, v in headers.items() if k != "Date"} == without_date
            assert body == reference[2]
        assert {k: reference[1][k] for k in EXTRA} == EXTRA
        assert [c["Status"] for c in json.loads(reference[2])[0]["Checks"]] == ["critical"]

        # Each connection is still a working keep-alive connection, framed right.
        for conn in conns:
            await conn.get("/v1/status/leader")
        for conn in conns:
            status, _, body = await conn.response()
            assert status == "HTTP/1.1 200 OK" and body.startswith(b'"127.0.0.1:')
    finally:
        for conn in conns:
            conn.close()


async def test_requests_the_pass_must_not_answer_get_their_handlers_answer(
    agent: DevAgent, http: HTTP
) -> None:
    await register(http, "passing")
    index = await current_index(http, "/v1/health/service/web")
    shared = waits(agent)
    early = shared.early_answers
    path = f"/v1/health/service/web?index={index}&wait=60s"
    fast, old, closing, peer, filtered = [await Raw.open(agent) for _ in range(5)]
    try:
        await fast.get(path)
        await old.get(path, version="1.0")
        await closing.get(path, extra="Connection: close\r\n")
        await peer.get(path + "&peer=other")
        await filtered.get(path + "&filter=" + "Service.Port%20%3D%3D%2081")
        await parked(shared, 5)
        # ?filter is another read; ?peer reads the same (and blanks the result afterwards).
        assert len(shared) == 2

        await register(http, "warning")
        status, headers, body = await fast.response()
        assert status == "HTTP/1.1 200 OK" and int(headers["X-Consul-Index"]) > index
        assert (await old.response())[0] == "HTTP/1.0 200 OK"
        status, headers, closing_body = await closing.response()
        assert headers["Connection"] == "close" and closing_body == body
        status, headers, peer_body = await peer.response()
        assert status == "HTTP/1.1 200 OK" and json.loads(peer_body) == []
        _, headers, filtered_body = await filtered.response()
        assert int(headers["X-Consul-Index"]) > index
        assert json.loads(filtered_body) == []  # the service listens on 80
        assert shared.early_answers - early == 2  # `fast`, and the one member of ?filter's wait
    finally:
        for conn in (fast, old, closing, peer, filtered):
            conn.close()
