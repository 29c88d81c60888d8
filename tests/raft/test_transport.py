"""TcpTransport: framing, protocol byte dispatch, bounds, TLS, reconnects."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct
from pathlib import Path

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consulpy.raft.transport import TcpTransport, split_address
from consulpy.raft.types import (
    Configuration,
    Entry,
    EntryKind,
    Message,
    MsgType,
    Server,
    SnapshotMeta,
    encode_message,
)
from tests.raft.helpers import wait_until


def sample(i: int = 0) -> Message:
    return Message(
        MsgType.APPEND,
        "a",
        "b",
        3,
        index=10 + i,
        log_term=2,
        entries=[Entry(3, 11 + i, EntryKind.NORMAL, b"payload")],
        commit=9,
        ctx=4,
        snap_meta=SnapshotMeta(5, 1, Configuration((Server("a", "x:1"),)), 1),
    )


class Inbox:
    def __init__(self) -> None:
        self.got: list[Message] = []
        self.addrs: list[str | None] = []

    def __call__(self, m: Message, addr: str | None) -> None:
        self.got.append(m)
        self.addrs.append(addr)


async def test_messages_roundtrip_and_carry_sender_address() -> None:
    a, b = TcpTransport(), TcpTransport()
    inbox = Inbox()
    await a.start(Inbox())
    await b.start(inbox)
    try:
        for i in range(100):
            a.send(b.address, sample(i))
        await wait_until(lambda: len(inbox.got) == 100)
        assert inbox.got == [sample(i) for i in range(100)]  # in order, intact
        assert set(inbox.addrs) == {a.address}
    finally:
        await a.close()
        await b.close()


async def test_from_prebound_socket_and_address() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    t = TcpTransport(sock=sock)
    await t.start(Inbox())
    try:
        assert t.address == f"127.0.0.1:{port}"
        assert split_address(t.address) == ("127.0.0.1", port)
    finally:
        await t.close()


async def test_registered_protocol_shares_the_listener() -> None:
    t = TcpTransport()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(5)
        writer.write(data.upper())
        await writer.drain()

    t.register_protocol(0x00, echo)
    with pytest.raises(ValueError):
        t.register_protocol(0x01, echo)
    await t.start(Inbox())
    try:
        host, port = split_address(t.address)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x00hello")
        assert await reader.readexactly(5) == b"HELLO"
        writer.close()
        # An unknown protocol byte gets the connection closed.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x7fxx")
        assert await reader.read() == b""
        writer.close()
    finally:
        await t.close()


async def _raw_raft(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\x01")
    return reader, writer


async def test_oversized_and_malformed_frames_close_the_connection() -> None:
    inbox = Inbox()
    t = TcpTransport(max_frame_size=1024)
    await t.start(inbox)
    try:
        reader, writer = await _raw_raft(t.address)
        writer.write(struct.pack(">I", 1 << 30))  # a 1 GiB claim: refused before allocation
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        reader, writer = await _raw_raft(t.address)
        junk = msgpack.packb(["x", [[1, 2, 3]]])
        writer.write(struct.pack(">I", len(junk)) + junk)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        # A well-formed frame on a fresh connection is still accepted.
        reader, writer = await _raw_raft(t.address)
        good = msgpack.packb(["127.0.0.1:1", [encode_message(sample())]])
        writer.write(struct.pack(">I", len(good)) + good)
        await writer.drain()
        await wait_until(lambda: inbox.got == [sample()])
        writer.close()
    finally:
        await t.close()


def _make_cert(tmp: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consulpy-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


async def test_tls_between_transports(tmp_path: Path) -> None:
    cert, key = _make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert)
    inbox = Inbox()
    a = TcpTransport(server_ssl=server_ctx, client_ssl=client_ctx)
    b = TcpTransport(server_ssl=server_ctx, client_ssl=client_ctx)
    plain = TcpTransport()
    await a.start(Inbox())
    await b.start(inbox)
    await plain.start(Inbox())
    try:
        a.send(b.address, sample(1))
        await wait_until(lambda: inbox.got == [sample(1)])
        plain.send(b.address, sample(2))  # no TLS: the handshake fails, nothing is delivered
        a.send(b.address, sample(3))
        await wait_until(lambda: len(inbox.got) == 2)
        assert inbox.got == [sample(1), sample(3)]
    finally:
        for t in (a, b, plain):
            await t.close()


async def test_reconnects_after_peer_restart() -> None:
    a = TcpTransport(min_backoff=0.01, max_backoff=0.05)
    await a.start(Inbox())
    inbox1 = Inbox()
    b = TcpTransport()
    await b.start(inbox1)
    addr = b.address
    port = split_address(addr)[1]
    a.send(addr, sample(1))
    await wait_until(lambda: inbox1.got)
    await b.close()
    inbox2 = Inbox()
    b2 = TcpTransport(port=port)
    await b2.start(inbox2)
    try:

        def delivered() -> bool:
            a.send(addr, sample(2))  # sends to a dead connection are lost; Raft retries too
            return bool(inbox2.got)

        await wait_until(delivered)
        assert inbox2.got[0] == sample(2)
    finally:
        await a.close()
        await b2.close()


async def test_frames_name_the_advertised_address_not_the_bound_one() -> None:
    # A peer that answers the sender of a frame must reach us there, even when we bind 0.0.0.0.
    a = TcpTransport("127.0.0.1", 0, advertise="127.0.0.9:0")
    b = TcpTransport()
    inbox = Inbox()
    await a.start(Inbox())
    await b.start(inbox)
    try:
        port = split_address(a.bound_address)[1]
        assert a.bound_address == f"127.0.0.1:{port}"
        assert a.address == f"127.0.0.9:{port}"  # port 0 in advertise: the bound port
        a.send(b.address, sample())
        await wait_until(lambda: len(inbox.got) == 1)
        assert inbox.addrs == [f"127.0.0.9:{port}"]
    finally:
        await a.close()
        await b.close()


async def test_unspecified_addresses_are_never_advertised() -> None:
    with pytest.raises(ValueError, match="cannot dial"):
        TcpTransport(advertise="0.0.0.0:8300")
    with pytest.raises(ValueError, match="cannot dial"):
        TcpTransport(advertise="[::]:8300")
    t = TcpTransport("0.0.0.0", 0)
    with pytest.raises(ValueError, match="advertise"):
        await t.start(Inbox())
    await t.close()
