"""The HTTPS API: client certificates, HTTP beside HTTPS or HTTPS alone, TLS versions, and
certificates rotated on disk reaching new connections while open ones carry on."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509

from consulpy.agent.agent import AgentError
from consulpy.config import ConfigError
from consulpy.testing import DevAgent
from tests.tls.certs import Material, https_config, make_material

HTTPS_FLAGS = ["-https-port=0"]


@pytest.fixture
def material(tmp_path: Path) -> Material:
    return make_material(tmp_path)


def client_context(m: Material, *, cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(m.ca))
    if cert:
        ctx.load_cert_chain(m.client_cert, m.client_key)
    return ctx


async def get(url: str, ctx: ssl.SSLContext | None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx or False) as resp:
        return resp.status, await resp.read()


@pytest_asyncio.fixture
async def mtls_agent(material: Material) -> AsyncIterator[DevAgent]:
    config = https_config(material, verify_incoming=True)
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        yield dev


async def test_verify_incoming_refuses_a_client_without_a_certificate(
    mtls_agent: DevAgent, material: Material
) -> None:
    url = f"{mtls_agent.https_url}/v1/status/leader"
    with pytest.raises(aiohttp.ClientError):
        await get(url, client_context(material, cert=False))
    status, body = await get(url, client_context(material))
    assert status == 200 and body.strip(b'"')
    # plain HTTP still answers beside HTTPS, without asking for a certificate
    status, _ = await get(f"http://{mtls_agent.http_addr}/v1/status/leader", None)
    assert status == 200


async def test_a_certificate_from_another_ca_is_refused(
    mtls_agent: DevAgent, material: Material, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = make_material(other_dir)
    ctx = ssl.create_default_context(cafile=str(material.ca))
    ctx.load_cert_chain(other.client_cert, other.client_key)
    with pytest.raises(aiohttp.ClientError):
        await get(f"{mtls_agent.https_url}/v1/status/leader", ctx)


async def test_https_only_when_http_is_off(material: Material) -> None:
    flags = [*HTTPS_FLAGS, "-http-port=-1"]
    async with DevAgent(flags=flags, config=https_config(material)) as dev:
        assert dev.agent is not None and dev.agent.http_addresses == []
        assert dev.url == dev.https_url
        assert dev.client_env() == {
            "CONSUL_HTTP_ADDR": dev.https_url,
            "CONSUL_CACERT": str(material.ca),
        }
        status, _ = await get(f"{dev.url}/v1/agent/self", client_context(material, cert=False))
        assert status == 200


async def test_https_without_a_certificate_is_a_clear_error() -> None:
    dev = DevAgent(flags=HTTPS_FLAGS)
    with pytest.raises(AgentError, match=r"HTTPS listener \(ports.https\).*cert_file"):
        await dev.start()


async def test_tls_min_version_refuses_an_older_client(material: Material) -> None:
    config = https_config(material, tls_min_version="TLSv1_3")
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        url = f"{dev.https_url}/v1/status/leader"
        old = client_context(material, cert=False)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(aiohttp.ClientError):
            await get(url, old)
        assert (await get(url, client_context(material, cert=False)))[0] == 200


def test_bad_tls_names_are_config_errors(material: Material) -> None:
    with pytest.raises(ConfigError, match=r"tls\.https\.tls_min_version"):
        DevAgent(flags=HTTPS_FLAGS, config=https_config(material, tls_min_version="TLSv9"))
    with pytest.raises(ConfigError, match="TLS_NOPE"):
        DevAgent(
            flags=HTTPS_FLAGS,
            config=https_config(material, tls_cipher_suites="TLS_NOPE"),
        )


async def test_legacy_top_level_keys_turn_on_verify_incoming_https(material: Material) -> None:
    config = {
        "ca_file": str(material.ca),
        "cert_file": str(material.server_cert),
        "key_file": str(material.server_key),
        "verify_incoming_https": True,
    }
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        url = f"{dev.https_url}/v1/status/leader"
        with pytest.raises(aiohttp.ClientError):
            await get(url, client_context(material, cert=False))
        assert (await get(url, client_context(material)))[0] == 200


# ----------------------------------------------------------------- rotation
class KeepAlive:
    """One HTTPS connection kept open across requests (HTTP/1.1 keep-alive)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, addr: str, ctx: ssl.SSLContext) -> KeepAlive:
        host, port = addr.rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port), ssl=ctx))

    def peer_serial(self) -> int:
        der = self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: consul\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


async def test_rotated_certificate_reaches_new_connections_while_old_ones_continue(
    mtls_agent: DevAgent, material: Material
) -> None:
    assert mtls_agent.runtime is not None
    ctx = client_context(material)
    old_serial = serial_of(material.server_cert)
    old = await KeepAlive.open(mtls_agent.https_addr, ctx)
    try:
        assert await old.get("/v1/status/leader") == 200
        assert old.peer_serial() == old_serial

        # rotate on disk: the new certificate and key replace the configured files
        new_cert, new_key = material.new_server_cert()
        shutil.copyfile(new_cert, material.server_cert)
        shutil.copyfile(new_key, material.server_key)
        new_serial = serial_of(material.server_cert)
        assert new_serial != old_serial
        mtls_agent.runtime.reload_tls()

        fresh = await KeepAlive.open(mtls_agent.https_addr, ctx)
        try:
            assert await fresh.get("/v1/status/leader") == 200
            assert fresh.peer_serial() == new_serial
        finally:
            await fresh.close()
        # the connection opened before the reload still serves requests
        assert await old.get("/v1/agent/self") == 200
        assert old.peer_serial() == old_serial
    finally:
        await old.close()


async def test_a_bad_file_on_reload_is_refused_and_the_old_certificate_stays(
    mtls_agent: DevAgent, material: Material
) -> None:
    assert mtls_agent.runtime is not None
    old_serial = serial_of(material.server_cert)
    good = material.server_cert.read_bytes()
    material.server_cert.write_text("not a certificate")
    with pytest.raises(AgentError, match="reloading TLS"):
        mtls_agent.runtime.reload_tls()
    material.server_cert.write_bytes(good)
    conn = await KeepAlive.open(mtls_agent.https_addr, client_context(material))
    try:
        assert await conn.get("/v1/status/leader") == 200
        assert conn.peer_serial() == old_serial
    finally:
        await conn.close()


async def test_agent_reload_applies_new_certificate_paths(material: Material) -> None:
    """`Agent.reload` (SIGHUP, `consulpy reload`) runs the TLS reload hook with the new
    configuration: here it names other files."""
    from consulpy.config import load_agent_config
    from consulpy.runtime import Runtime

    new_cert, new_key = material.new_server_cert()
    argv = [
        "-dev",
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        "-http-port=-1",
        "-https-port=0",
        "-server-port=0",
        "-serf-lan-port=0",
        "-serf-wan-port=-1",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-log-level=warn",
    ]
    first = load_agent_config(argv, extra_sources=[https_config(material)])
    rotated = https_config(material)
    rotated["tls"]["defaults"].update(cert_file=str(new_cert), key_file=str(new_key))  # type: ignore[index]
    second = load_agent_config(argv, extra_sources=[rotated])
    runtime = Runtime(first, reload_config=lambda: second)
    await runtime.start()
    try:
        addr = "{}:{}".format(*runtime.http.https_addresses[0])
        ctx = client_context(material, cert=False)
        conn = await KeepAlive.open(addr, ctx)
        assert conn.peer_serial() == serial_of(material.server_cert)
        await conn.close()
        await runtime.agent.reload()
        conn = await KeepAlive.open(addr, ctx)
        assert await conn.get("/v1/status/leader") == 200
        assert conn.peer_serial() == serial_of(new_cert)
        await conn.close()
    finally:
        await runtime.stop()


async def test_tls_cipher_suites_limit_tls12_clients(material: Material) -> None:
    config = https_config(
        material,
        tls_min_version="TLSv1_2",
        tls_cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    )
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        url = f"{dev.https_url}/v1/status/leader"
        other = client_context(material, cert=False)
        other.maximum_version = ssl.TLSVersion.TLSv1_2
        other.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(aiohttp.ClientError):
            await get(url, other)
        listed = client_context(material, cert=False)
        listed.maximum_version = ssl.TLSVersion.TLSv1_2
        listed.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
        assert (await get(url, listed))[0] == 200


async def test_a_client_that_never_finishes_the_handshake_is_dropped(material: Material) -> None:
    config = {**https_config(material), "limits": {"https_handshake_timeout": "200ms"}}
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        host, port = dev.https_addr.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            # far below asyncio's own 60 s default: the configured timeout closed it
            assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        finally:
            writer.close()


async def test_ca_path_is_a_directory_of_pem_files_with_any_names(
    material: Material, tmp_path: Path
) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copyfile(material.ca, cas / "our-ca.crt")
    (cas / "README").write_text("not a certificate")
    config = https_config(material, verify_incoming=True)
    del config["tls"]["defaults"]["ca_file"]  # type: ignore[index]
    config["tls"]["defaults"]["ca_path"] = str(cas)  # type: ignore[index]
    async with DevAgent(flags=HTTPS_FLAGS, config=config) as dev:
        url = f"{dev.https_url}/v1/status/leader"
        assert (await get(url, client_context(material)))[0] == 200
        with pytest.raises(aiohttp.ClientError):
            await get(url, client_context(material, cert=False))
