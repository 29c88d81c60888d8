"""Shared fixtures: a dev agent in the test's event loop and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from consulpy.testing import DevAgent
from consulpy.util.eventloop import loop_factory, resolve


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Async tests run on the loop `consulpy agent` would pick here (uvloop when installed;
    CONSULPY_EVENT_LOOP=asyncio runs the suite on asyncio's own loop)."""
    return {resolve(): loop_factory()}


def pytest_report_header(config: pytest.Config) -> str:
    return f"consulpy event loop: {resolve()}"


class HTTP:
    """A thin client: `await http.get("/v1/kv/a")` -> (status, headers, body bytes)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if isinstance(data, str):
            data = data.encode()
        async with self.session.request(
            method, self.base + path, data=data, headers=headers
        ) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    async def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return await self.request("GET", path, **kw)

    async def put(
        self, path: str, data: Any = None, **kw: Any
    ) -> tuple[int, dict[str, str], bytes]:
        return await self.request("PUT", path, data=data, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return await self.request("DELETE", path, **kw)

    async def json(self, method: str, path: str, data: Any = None) -> Any:
        import json

        status, _, body = await self.request(method, path, data=data)
        assert status == 200, (status, body)
        return json.loads(body)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(config={"session_ttl_min": "1s"}) as dev:
        yield dev


@pytest_asyncio.fixture
async def http(agent: DevAgent) -> AsyncIterator[HTTP]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield HTTP(session, agent.url)
