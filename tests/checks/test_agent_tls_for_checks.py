"""enable_agent_tls_for_checks: an HTTPS check against a service that only talks to clients with
a certificate from the cluster CA passes when the agent lends its own TLS material, and fails
without it (Consul's default: checks use the system trust store and no client certificate)."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually_value
from tests.tlsutil import CA


@pytest_asyncio.fixture
async def mtls_service(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """An HTTPS service on 127.0.0.1 that requires a client certificate signed by the CA;
    yields its URL and the agent TLS settings that satisfy it."""
    ca = CA(tmp_path)
    server_cert, server_key = ca.issue("svc", ["localhost"])
    agent_cert, agent_key = ca.issue("agent", ["server.dc1.consul"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.path))
    ctx.load_cert_chain(str(server_cert), str(server_key))
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="healthy")

    app = web.Application()
    app.router.add_get("/health", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    tls = {"defaults": {"ca_file": str(ca.path), "cert_file": str(agent_cert)}}
    tls["defaults"]["key_file"] = str(agent_key)
    try:
        yield f"https://127.0.0.1:{port}/health", {"tls": tls}
    finally:
        await runner.cleanup()


async def _check_status(config: dict[str, Any], url: str, want: str) -> dict[str, Any]:
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        body = json.dumps({"Name": "web", "CheckID": "web", "HTTP": url, "Interval": "200ms"})
        status, _, text = await http.put("/v1/agent/check/register", body)
        assert status == 200, text

        async def settled() -> dict[str, Any] | None:
            check: dict[str, Any] = (await http.json("GET", "/v1/agent/checks"))["web"]
            return check if check["Status"] == want and check["Output"] else None

        result: dict[str, Any] = await eventually_value(settled, what=f"check {want}")
        return result


async def test_check_presents_the_agent_certificate_and_trusts_its_ca(
    mtls_service: tuple[str, dict[str, Any]],
) -> None:
    url, tls = mtls_service
    check = await _check_status({**tls, "enable_agent_tls_for_checks": True}, url, "passing")
    assert "healthy" in check["Output"]


async def test_without_the_setting_checks_do_not_use_the_agent_tls(
    mtls_service: tuple[str, dict[str, Any]],
) -> None:
    url, tls = mtls_service
    check = await _check_status(tls, url, "critical")
    assert "certificate" in check["Output"].lower()
