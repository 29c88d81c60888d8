"""The hot path for `GET /v1/kv/<key>` (consulpy/http/hotpath.py), seen from a client on a
raw socket: it answers exactly what the full aiohttp path answers, byte for byte apart from
the Date, takes only the requests it may, and leaves pipelined, partial and odd requests to
aiohttp in order."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from consulpy.http.hotpath import HotPath, parse_get
from consulpy.http.limits import whole_requests
from consulpy.testing import DevAgent
from tests.acl_enforce.conftest import acl_config, ready

# An inert header the hot path does not take: the same request, answered by aiohttp.
FULL_PATH = b"X-Probe: 1\r\n"


class Conn:
    """One keep-alive connection that reads whole responses (Content-Length framed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def response(self) -> bytes:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        length = int(re.search(rb"(?i)\r\nContent-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        return head + await asyncio.wait_for(self.reader.readexactly(length), 10)

    async def exchange(self, raw: bytes) -> bytes:
        await self.send(raw)
        return await self.response()


@pytest_asyncio.fixture
async def dev() -> AsyncIterator[DevAgent]:
    async with DevAgent() as agent:
        yield agent


async def connect(dev: DevAgent) -> AsyncIterator[Conn]:
    host, port = dev.http_addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield Conn(reader, writer)
    finally:
        writer.close()


@pytest_asyncio.fixture
async def conn(dev: DevAgent) -> AsyncIterator[Conn]:
    async for c in connect(dev):
        yield c


def hot(dev: DevAgent) -> HotPath:
    assert dev.runtime is not None and dev.runtime.http.hot_path is not None
    return dev.runtime.http.hot_path


def get(key: str, extra: bytes = b"") -> bytes:
    return (
        (
            f"GET /v1/kv/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: t\r\n"
            "Accept-Encoding: gzip\r\nConnection: keep-alive\r\n"
        ).encode()
        + extra
        + b"\r\n"
    )


def put(key: str, value: bytes) -> bytes:
    return (
        f"PUT /v1/kv/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(value)}\r\n\r\n"
    ).encode() + value


def undated(response: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", response)


def body(response: bytes) -> object:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


async def test_answers_exactly_what_the_full_path_answers(dev: DevAgent, conn: Conn) -> None:
    for key, value in (("app/config", b"hello"), ("a-b_c~d!$&'()*+,;=:@", b"\x00\xff" * 40)):
        assert b"true" in await conn.exchange(put(key, value))
    path = hot(dev)
    for key in ("app/config", "a-b_c~d!$&'()*+,;=:@", "missing/key"):
        before = path.answered
        fast = await conn.exchange(get(key))
        assert path.answered == before + 1, "the hot path took the plain GET"
        full = await conn.exchange(get(key, FULL_PATH))
        assert path.answered == before + 1, "aiohttp took the GET with another header"
        assert undated(fast) == undated(full)
        assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n", fast)
    missing = await conn.exchange(get("missing/key"))
    assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n") and missing.endswith(b"\r\n\r\n")


async def test_a_write_is_seen_by_the_next_read_on_another_connection(
    dev: DevAgent, conn: Conn
) -> None:
    async for other in connect(dev):
        for i in range(20):
            assert b"true" in await conn.exchange(put("seq", str(i).encode()))
            [entry] = body(await other.exchange(get("seq")))  # type: ignore[misc]
            assert entry["Value"] == __import__("base64").b64encode(str(i).encode()).decode()
    assert hot(dev).answered >= 20


async def test_pipelined_requests_are_answered_in_order(dev: DevAgent, conn: Conn) -> None:
    await conn.send(put("p", b"1") + get("p") + put("p", b"2") + get("p") + get("nothing"))
    answers = [await conn.response() for _ in range(5)]
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 4 + [
        b"HTTP/1.1 404 Not Found"
    ]
    assert [body(a) for a in answers[0:4:2]] == [True, True]
    assert [e["Value"] for a in answers[1:4:2] for e in body(a)] == ["MQ==", "Mg=="]  # type: ignore[union-attr]


async def test_a_request_split_across_chunks_and_the_ones_after_it(
    dev: DevAgent, conn: Conn
) -> None:
    await conn.exchange(put("split", b"v"))
    raw = get("split")
    await conn.send(raw[:9])
    await conn.send(raw[9:])
    assert body(await conn.response())[0]["Key"] == "split"  # type: ignore[index]
    # Whether the server read it in one piece or two (when aiohttp's parser took a piece,
    # the connection stays on aiohttp's path), the requests after it are answered.
    for _ in range(3):
        assert body(await conn.exchange(get("split")))[0]["Value"] == "dg=="  # type: ignore[index]


async def test_a_chunked_put_then_gets(dev: DevAgent, conn: Conn) -> None:
    chunked = (
        b"PUT /v1/kv/ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    assert body(await conn.exchange(chunked)) is True
    assert body(await conn.exchange(get("ch")))[0]["Value"] == "YWJj"  # type: ignore[index]


async def test_requests_it_leaves_to_aiohttp_answer_as_before(dev: DevAgent, conn: Conn) -> None:
    await conn.exchange(put("k", b"v"))
    path = hot(dev)
    before = path.answered
    raw_answer = await conn.exchange(
        b"GET /v1/kv/k?raw HTTP/1.1\r\nHost: x\r\n\r\n"
    )  # a query string
    assert raw_answer.endswith(b"\r\n\r\nv")
    escaped = await conn.exchange(b"GET /v1/kv/%6B HTTP/1.1\r\nHost: x\r\n\r\n")
    assert body(escaped)[0]["Key"] == "k"  # type: ignore[index]
    traversal = await conn.exchange(b"GET /v1/kv/a/../k HTTP/1.1\r\nHost: x\r\n\r\n")
    assert traversal.startswith(b"HTTP/1.1 400 ")
    tenancy = await conn.exchange(get("k", b"X-Consul-Namespace: ns\r\n"))
    assert tenancy.startswith(b"HTTP/1.1 400 ") and b"Namespaces" in tenancy
    assert path.answered == before
    # Connection: close is honoured by aiohttp's path
    await conn.send(get("k").replace(b"keep-alive", b"close"))
    closing = await conn.response()
    assert b"\r\nConnection: close\r\n" in closing or closing.startswith(b"HTTP/1.1 200")
    assert await asyncio.wait_for(conn.reader.read(), 10) == b""
    assert path.answered == before


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/kv/a/b/c HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nX-Consul-Token: t\r\nauthorization: Bearer x\r\n\r\n",
    ],
)
def test_parse_takes_plain_gets(raw: bytes) -> None:
    assert parse_get(raw) is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v1/kv/ HTTP/1.1\r\n\r\n",  # no key (a list's 400)
        b"GET /v1/kv/a HTTP/1.0\r\n\r\n",
        b"HEAD /v1/kv/a HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a?pretty HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a%20b HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a/./b HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/.hidden HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a..b HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a\xc3\xa9 HTTP/1.1\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nCache-Control: max-age=x\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\nUser-Agent: a\r\n b\r\n\r\n",  # obsolete line folding
        b"GET /v1/kv/a HTTP/1.1\r\nUser-Agent: a\nb\r\n\r\n",  # a bare LF
        b"GET /v1/kv/a HTTP/1.1\r\nUser-Agent: a\rb\r\nAccept: c\nd\r\n\r\n",  # bare CR and LF
        b"GET /v1/kv/a HTTP/1.1\r\nUser-Agent: \x01\r\n\r\n",
        b"GET /v1/kv/a HTTP/1.1\r\n\r\nGET /v1/kv/b HTTP/1.1\r\n\r\n",  # two requests
        b"GET /v1/kv/a HTTP/1.1\r\n\r\nG",
        b"GET /v1/kv/a HTTP/1.1\r\n",
    ],
)
def test_parse_leaves_the_rest(raw: bytes) -> None:
    assert parse_get(raw) is None


@pytest.mark.parametrize(
    ("raw", "whole"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", True),
        (b"PUT / HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabc", True),
        (b"PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", False),
        (b"PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcG", False),
        (b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", False),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\n", False),
    ],
)
def test_whole_requests(raw: bytes, whole: bool) -> None:
    assert whole_requests(raw) is whole


async def test_not_taken_while_acls_enforce(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with DevAgent(config=dict(acl_config(), data_dir=str(tmp_path))) as agent:
        await ready(agent)
        async for c in connect(agent):
            denied = await c.exchange(get("secret"))
            assert denied.startswith(b"HTTP/1.1 403 ")
        assert hot(agent).answered == 0
