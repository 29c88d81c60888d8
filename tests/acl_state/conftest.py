"""A dev agent with ACLs enabled and an initial management token, and a client that sends it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.acl_support import acl_config as shared_acl_config
from tests.acl_support import acl_ready
from tests.conftest import HTTP

MGMT = "5c0ffee0-0000-4000-8000-00000000abcd"


class ACLHTTP(HTTP):
    """Sends the management token unless the test passes its own headers."""

    async def request(self, method: str, path: str, data: Any = None, headers=None):  # type: ignore[override]
        if headers is None:
            headers = {"X-Consul-Token": MGMT}
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        return await super().request(method, path, data=data, headers=headers)

    async def ok(self, method: str, path: str, data: Any = None) -> Any:
        status, _, body = await self.request(method, path, data)
        assert status == 200, (status, body)
        return json.loads(body) if body else None

    async def fails(self, method: str, path: str, data: Any = None) -> tuple[int, str]:
        status, _, body = await self.request(method, path, data)
        assert status != 200, body
        return status, body.decode()


def acl_config(**extra: Any) -> dict[str, Any]:
    return shared_acl_config(MGMT, **extra)


async def ready(dev: DevAgent) -> None:
    await acl_ready(dev, MGMT)


@pytest_asyncio.fixture
async def acl_agent(tmp_path) -> AsyncIterator[DevAgent]:
    async with DevAgent(config=dict(acl_config(), data_dir=str(tmp_path))) as dev:
        await ready(dev)
        yield dev


@pytest_asyncio.fixture
async def api(acl_agent: DevAgent) -> AsyncIterator[ACLHTTP]:
    async with aiohttp.ClientSession() as session:
        yield ACLHTTP(session, acl_agent.url)
