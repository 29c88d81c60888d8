"""The gRPC TLS port (Envoy's xDS) uses tls.grpc and takes rotated certificates on reload."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from consulpy.agent.agent import AgentError
from consulpy.testing import DevAgent
from tests.tls.certs import Material, https_config, make_material


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


async def served_serial(port: int, ctx: ssl.SSLContext) -> int:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        # No TLS close_notify exchange: the gRPC server does not answer one before its own
        # timeout, and uvloop reports the client's wait for it as a TimeoutError.
        writer.transport.abort()


async def test_grpc_tls_certificate_reloads(tmp_path: Path) -> None:
    m: Material = make_material(tmp_path)
    config = https_config(m)
    config["tls"]["grpc"] = {"verify_incoming": True}  # type: ignore[index]
    async with DevAgent(flags=["-grpc-tls-port=0"], config=config) as dev:
        assert dev.runtime is not None
        port = dev.runtime.xds.tls_port
        ctx = ssl.create_default_context(cafile=str(m.ca))
        ctx.set_alpn_protocols(["h2"])
        ctx.load_cert_chain(m.client_cert, m.client_key)
        assert await served_serial(port, ctx) == serial_of(m.server_cert)

        new_cert, new_key = m.new_server_cert()
        shutil.copyfile(new_cert, m.server_cert)
        shutil.copyfile(new_key, m.server_key)
        dev.runtime.reload_tls()
        assert await served_serial(port, ctx) == serial_of(new_cert)

        m.server_key.write_text("garbage")
        m.server_cert.unlink()
        with pytest.raises(AgentError, match="reloading TLS"):
            dev.runtime.reload_tls()
        assert await served_serial(port, ctx) == serial_of(new_cert)


async def test_grpc_tls_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    m = make_material(tmp_path)
    config = https_config(m)
    config["tls"]["grpc"] = {"tls_min_version": "TLSv1_3"}  # type: ignore[index]
    dev = DevAgent(flags=["-grpc-tls-port=0"], config=config)
    with pytest.raises(AgentError, match="TLSv1_3 is not supported on the gRPC port"):
        await dev.start()
