"""Malformed or unsupported requests get FORMERR/NOTIMP (or silence) and change nothing: the
server keeps answering afterwards."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.exception
import dns.message
import dns.opcode
import dns.rcode
import pytest
import pytest_asyncio

from tests.dns.support import Client, dns_agent, rdatas
from tests.helpers import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[Client]:
    async with dns_agent() as c:
        yield c


def header(qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, 0, 0)


def rcode_of(wire: bytes) -> int:
    return dns.rcode.from_flags(struct.unpack("!H", wire[2:4])[0], 0)


async def still_answers(client: Client) -> None:
    resp = await client.ask("web.service.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}


@pytest.mark.parametrize(
    ("what", "packet"),
    [
        ("truncated question", header() + b"\x03web\x07serv"),
        ("question without type and class", header() + b"\x03web\x00"),
        ("compression loop", header() + b"\xc0\x0c\x00\x01\x00\x01"),
        ("pointer past the end", header() + b"\xc0\xff\x00\x01\x00\x01"),
        ("reserved label type", header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"),
        (
            "name over 255 bytes",
            header()
            + b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"b" * 63 * 1
            + b"\x3f"
            + b"c" * 63
            + b"\x3f"
            + b"d" * 63
            + b"\x3f"
            + b"e" * 63
            + b"\x00\x00\x01\x00\x01",
        ),
        ("answer count with no answers", header(an=3) + b"\x00\x00\x01\x00\x01"),
    ],
)
async def test_malformed_packets_get_formerr(client: Client, what: str, packet: bytes) -> None:
    reply = await client.raw_udp(packet)
    assert reply is not None, what
    assert reply[:2] == b"\x12\x34" and rcode_of(reply) == dns.rcode.FORMERR, what
    await still_answers(client)


@pytest.mark.parametrize("packet", [b"", b"\x00", b"\x12\x34\x01\x00\x00"])
async def test_packets_without_a_header_are_dropped(client: Client, packet: bytes) -> None:
    assert await client.raw_udp(packet, timeout=0.3) is None
    await still_answers(client)


async def test_responses_are_never_answered(client: Client) -> None:
    query = dns.message.make_query("web.service.consul", "A")
    query.flags |= 0x8000  # QR: this is a response; answering could start a loop
    assert await client.raw_udp(query.to_wire(), timeout=0.3) is None
    await still_answers(client)


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS])
async def test_other_opcodes_get_notimp(client: Client, opcode: int) -> None:
    query = dns.message.make_query("web.service.consul", "SOA")
    query.set_opcode(opcode)
    reply = await client.raw_udp(query.to_wire())
    assert reply is not None and rcode_of(reply) == dns.rcode.NOTIMP
    await still_answers(client)


async def test_zone_transfer_is_not_implemented(client: Client) -> None:
    resp = await client.ask("consul", "AXFR", tcp=True)
    assert resp.rcode() == dns.rcode.NOTIMP


async def test_unknown_type_in_domain_is_nodata(client: Client) -> None:
    resp = await client.ask("web.service.consul", "TYPE65280")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer and resp.authority
    resp = await client.ask("web.service.consul", "MX")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer


async def test_no_question_is_refused(client: Client) -> None:
    reply = await client.raw_udp(header(qd=0))
    assert reply is not None and rcode_of(reply) == dns.rcode.REFUSED


async def test_garbage_over_tcp(client: Client) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        junk = header() + b"\xc0\x0c" * 20
        writer.write(len(junk).to_bytes(2, "big") + junk)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        reply = await reader.readexactly(size)
        assert rcode_of(reply) == dns.rcode.FORMERR
        # The same connection still serves a proper query.
        wire = dns.message.make_query("db.service.consul", "A").to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        resp = dns.message.from_wire(await reader.readexactly(size))
        assert rdatas(resp.answer) == {"A 10.0.0.1"}
        # A frame that is not a query (shorter than a header) ends the connection.
        writer.write(b"\x00\x03abc")
        await writer.drain()
        assert await reader.read() == b""
    finally:
        writer.close()
    await still_answers(client)


async def test_random_and_mutated_packets_never_stop_the_server(client: Client) -> None:
    rng = random.Random(1414)
    valid = dns.message.make_query("web.service.consul", "SRV", use_edns=0).to_wire()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=(client.host, client.port)
    )
    try:
        for _ in range(300):
            packet = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            transport.sendto(bytes(packet[: rng.randint(0, len(packet))]))
            transport.sendto(bytes(rng.randbytes(rng.randint(0, 80))))
    finally:
        transport.close()

    # The flood may overflow the socket's receive buffer (the kernel drops datagrams then),
    # so the first queries after it may be lost as any UDP client would see; retry as they do.
    async def answers() -> bool:
        query = dns.message.make_query("web.service.consul", "A")
        try:
            resp = await dns.asyncquery.udp(query, client.host, port=client.port, timeout=0.5)
        except dns.exception.Timeout:
            return False
        return rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}

    await eventually(answers, timeout=10, what="the server answers after the flood")
    resp = await client.ask("web.service.consul", "SRV", tcp=True)
    assert len(rdatas(resp.answer)) == 3


async def test_unknown_edns_version_gets_badvers(client: Client) -> None:
    query = dns.message.make_query("web.service.consul", "A", use_edns=1)
    reply = await client.raw_udp(query.to_wire())
    assert reply is not None
    resp = dns.message.from_wire(reply)
    assert resp.rcode() == dns.rcode.BADVERS


async def test_client_subnet_is_echoed_with_scope_zero(client: Client) -> None:
    import dns.edns

    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    query = dns.message.make_query("web.service.consul", "A", use_edns=0, options=[ecs])
    reply = await client.raw_udp(query.to_wire())
    assert reply is not None
    resp = dns.message.from_wire(reply)
    echoed = [o for o in resp.options if isinstance(o, dns.edns.ECSOption)]
    assert len(echoed) == 1
    assert (echoed[0].address, echoed[0].srclen, echoed[0].scopelen) == ("192.0.2.0", 24, 0)
