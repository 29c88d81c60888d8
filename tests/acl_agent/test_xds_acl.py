"""The xDS stream needs a token with service:write on the proxied service: a sidecar with a
service-identity token gets its config from a real Envoy's point of view, one with another
service's token is refused with PERMISSION_DENIED."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.acl_state.conftest import ACLHTTP, acl_config, ready
from tests.helpers import eventually
from tests.xds.mesh import Envoy, sidecar_bootstrap


@pytest_asyncio.fixture
async def mesh_agent(tmp_path: Path) -> AsyncIterator[DevAgent]:
    config = dict(acl_config(), data_dir=str(tmp_path / "data"))
    async with DevAgent(node_name="n1", flags=["-grpc-port=0"], config=config) as dev:
        await ready(dev)
        yield dev


async def test_sidecar_token_needs_service_write(mesh_agent: DevAgent, tmp_path: Path) -> None:
    assert mesh_agent.agent is not None and mesh_agent.runtime is not None
    xds = mesh_agent.runtime.xds
    async with aiohttp.ClientSession() as session:
        api = ACLHTTP(session, mesh_agent.url)
        for name, port in (("web", 9090), ("db", 9091)):
            body = {"Name": name, "Port": port, "Connect": {"SidecarService": {}}}
            await api.ok("PUT", "/v1/agent/service/register", body)
        identity = {"ServiceIdentities": [{"ServiceName": "web"}]}
        secret = (await api.ok("PUT", "/v1/acl/token", identity))["SecretID"]
    port = xds.plaintext_port
    good = Envoy(tmp_path, "good", sidecar_bootstrap("web-sidecar-proxy", "web", port, secret))
    # The db sidecar started with web's token.
    bad = Envoy(tmp_path, "bad", sidecar_bootstrap("db-sidecar-proxy", "db", port, secret))
    try:
        await good.start()
        await bad.start()

        async def good_has_listener() -> bool:
            dump = await good.get("/config_dump?resource=dynamic_listeners")
            return "public_listener" in dump

        await eventually(good_has_listener, timeout=30, what="web sidecar's public listener")
        assert xds.plaintext is not None
        assert xds.plaintext.streams("web-sidecar-proxy")

        async def bad_refused() -> bool:
            return "PERMISSION_DENIED" in bad.logs() or "Permission denied" in bad.logs()

        await eventually(bad_refused, timeout=30, what="db sidecar refused")
        assert "lacks permission 'service:write' on \"db\"" in bad.logs()
        dump = await bad.get("/config_dump?resource=dynamic_listeners")
        assert "public_listener" not in dump
        assert not xds.plaintext.streams("db-sidecar-proxy")
    finally:
        await good.stop()
        await bad.stop()
