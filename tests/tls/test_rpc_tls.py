"""TLS on the server port: with verify_server_hostname a dialer accepts only a certificate
valid for server.<dc>.<domain>, so a client agent's certificate cannot pose as a server; and
certificates reload in place."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_asyncio
from cryptography import x509

from consulpy.raft.transport import TcpTransport
from consulpy.rpc import tls as rpc_tls
from consulpy.rpc.client import RPCClient
from consulpy.rpc.codec import PROTO_RPC
from consulpy.rpc.errors import RPCDialError
from consulpy.rpc.server import RPCServer
from tests.tls.certs import Material, make_material


@pytest.fixture
def material(tmp_path: Path) -> Material:
    return make_material(tmp_path)


def settings(m: Material, cert: Path, key: Path, **extra: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "ca_file": str(m.ca),
        "ca_path": None,
        "cert_file": str(cert),
        "key_file": str(key),
        "verify_incoming": True,
        "verify_outgoing": True,
        "verify_server_hostname": False,
        "tls_min_version": "TLSv1_2",
        "tls_cipher_suites": None,
    }
    base.update(extra)
    return SimpleNamespace(**base)


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[rpc_tls.RPCTLS], object]]:
    transports: list[TcpTransport] = []

    async def start(tls: rpc_tls.RPCTLS) -> TcpTransport:
        server = RPCServer()

        async def echo(args: object) -> object:
            return args

        server.register("echo", echo)
        transport = TcpTransport("127.0.0.1", 0, server_ssl=tls.server)
        transport.register_protocol(PROTO_RPC, server.serve)
        await transport.start(lambda m, a: None)
        transports.append(transport)
        return transport

    yield start
    for t in transports:
        await t.close()


async def call(tls: rpc_tls.RPCTLS, address: str) -> object:
    client = RPCClient(ssl_context=tls.client, server_hostname=tls.server_hostname)
    try:
        return await client.call(address, "echo", "hi")
    finally:
        await client.close()


async def test_verify_server_hostname_refuses_a_client_certificate_posing_as_server(
    material: Material, serve
) -> None:
    dialer = rpc_tls.build(
        settings(material, material.client_cert, material.client_key, verify_server_hostname=True),
        "dc1",
        "consul",
    )
    assert dialer.server_hostname == "server.dc1.consul"
    real = await serve(
        rpc_tls.build(settings(material, material.server_cert, material.server_key), "dc1")
    )
    assert await call(dialer, real.address) == "hi"

    impostor = await serve(
        rpc_tls.build(settings(material, material.client_cert, material.client_key), "dc1")
    )
    with pytest.raises(RPCDialError, match=r"(?i)certificate|hostname"):
        await call(dialer, impostor.address)

    # without verify_server_hostname the same certificate is accepted (signed by the CA)
    lenient = rpc_tls.build(
        settings(material, material.client_cert, material.client_key), "dc1", "consul"
    )
    assert await call(lenient, impostor.address) == "hi"


async def test_a_dialer_in_another_datacenter_refuses_the_server(material: Material, serve) -> None:
    server = await serve(
        rpc_tls.build(settings(material, material.server_cert, material.server_key), "dc1")
    )
    dialer = rpc_tls.build(
        settings(material, material.client_cert, material.client_key, verify_server_hostname=True),
        "dc2",
    )
    with pytest.raises(RPCDialError):
        await call(dialer, server.address)


async def test_rpc_certificates_reload_in_place(material: Material, serve) -> None:
    conf = settings(material, material.server_cert, material.server_key)
    tls = rpc_tls.build(conf, "dc1")
    server = await serve(tls)
    new_cert, new_key = material.new_server_cert()
    rpc_tls.reload_rpc(tls, settings(material, new_cert, new_key))
    ctx = ssl.create_default_context(cafile=str(material.ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(material.client_cert, material.client_key)
    host, port = server.address.rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    served = x509.load_der_x509_certificate(der).serial_number
    assert served == x509.load_pem_x509_certificate(new_cert.read_bytes()).serial_number

    broken = settings(material, material.server_cert, material.server_key)
    broken.cert_file = str(material.dir / "missing.pem")
    with pytest.raises(rpc_tls.TLSConfigError):
        rpc_tls.reload_rpc(tls, broken)
