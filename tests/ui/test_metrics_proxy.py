"""`/v1/internal/ui/metrics-proxy/<path>` with `ui_config.metrics_proxy`: allowlisted paths are
proxied below base_url with add_headers and without the caller's token; other paths are 403,
escaping paths 400; the UI or the proxy off is Consul's 404; bad settings refuse to load; with
ACLs it needs node:read and service:read on everything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from yarl import URL

from consulpy.config.errors import ConfigError
from consulpy.config.loader import load_agent_config
from consulpy.testing import DevAgent
from tests.acl_support import acl_config, acl_ready

MGMT = "7c4d3b5f-1e2a-4d9b-8f4c-6b2d8e0a1f22"


@pytest_asyncio.fixture
async def backend() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(req: web.Request) -> web.Response:
        seen.append({"path": req.path, "query": req.query_string, "headers": dict(req.headers)})
        return web.json_response({"status": "success", "data": {"resultType": "vector"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def fetch(dev: DevAgent, path: str, token: str = "") -> tuple[int, str]:
    headers = {"X-Consul-Token": token} if token else {}
    url = URL(dev.url + path, encoded=True)
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


def proxy_config(base: str) -> dict[str, Any]:
    return {
        "ui_config": {
            "metrics_proxy": {
                "base_url": base + "/prom",
                "add_headers": [
                    {"name": "X-Auth", "value": "s3cret"},
                    {"name": "Host", "value": "metrics.internal"},
                ],
            }
        }
    }


async def test_allowlisted_paths_are_proxied(backend: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = backend
    async with DevAgent(config=proxy_config(base)) as dev:
        status, body = await fetch(
            dev, "/v1/internal/ui/metrics-proxy/api/v1/query?query=up", token="caller-secret"
        )
        assert status == 200, body
        assert json.loads(body)["status"] == "success"
        (got,) = seen
        assert got["path"] == "/prom/api/v1/query" and got["query"] == "query=up"
        assert got["headers"]["X-Auth"] == "s3cret"
        assert got["headers"]["Host"] == "metrics.internal"
        assert "X-Consul-Token" not in got["headers"]
        status, body = await fetch(dev, "/v1/internal/ui/metrics-proxy/api/v1/labels")
        assert (status, body) == (403, "")
        status, body = await fetch(dev, "/v1/internal/ui/metrics-proxy/%2e%2e/%2e%2e/etc/passwd")
        assert (status, body) == (400, "Invalid path.")
        assert len(seen) == 1  # neither reached the backend


async def test_off_answers_consuls_404s(backend: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = backend
    config = proxy_config(base)
    config["ui_config"]["enabled"] = False
    async with DevAgent(config=config) as dev:
        assert await fetch(dev, "/v1/internal/ui/metrics-proxy/api/v1/query") == (
            404,
            "UI is not enabled",
        )
    async with DevAgent() as dev:
        assert await fetch(dev, "/v1/internal/ui/metrics-proxy/api/v1/query") == (
            404,
            "Metrics proxy is not enabled",
        )


@pytest.mark.parametrize(
    ("proxy", "text"),
    [
        ({"base_url": "ftp://x"}, "must be a valid http or https URL"),
        ({"base_url": "http://x", "path_allowlist": ["api/v1/query"]}, "is not an absolute path"),
        ({"base_url": "http://x", "add_headers": [{"name": "A", "val": "b"}]}, "add_headers"),
        ({"base_url": "http://x", "surprise": 1}, "metrics_proxy.surprise: unknown key"),
    ],
)
def test_bad_settings_refuse_to_load(proxy: dict[str, Any], text: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_agent_config(["-dev"], extra_sources=[{"ui_config": {"metrics_proxy": proxy}}])
    assert text in str(err.value)


async def test_with_acls_it_needs_read_on_every_node_and_service(
    backend: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = backend
    config = {**acl_config(MGMT), **proxy_config(base)}
    async with DevAgent(config=config) as dev:
        await acl_ready(dev, MGMT)
        status, body = await fetch(dev, "/v1/internal/ui/metrics-proxy/api/v1/query")
        assert status == 403 and "lacks permission 'node:read'" in body
        status, body = await fetch(dev, "/v1/internal/ui/metrics-proxy/api/v1/query", token=MGMT)
        assert status == 200, body
        assert len(seen) == 1
