"""A dev agent with ACLs enabled and an initial management token, and a client that sends it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually

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
    return {
        "acl": {
            "enabled": True,
            "default_policy": "deny",
            "tokens": {"initial_management": MGMT},
            **extra,
        }
    }


async def ready(dev: DevAgent) -> None:
    assert dev.agent is not None
    server = dev.agent.server
    await eventually(
        lambda: (
            server.store.acl.tokens.get_unique(MGMT) is not None
            and server.store.acl.policies.get_unique("builtin/global-read-only") is not None
            and server.store.acl.tokens.get("00000000-0000-0000-0000-000000000002") is not None
        ),
        what="ACL built-ins",
    )


@pytest_asyncio.fixture
async def acl_agent(tmp_path) -> AsyncIterator[DevAgent]:
    async with DevAgent(config=dict(acl_config(), data_dir=str(tmp_path))) as dev:
        await ready(dev)
        yield dev


@pytest_asyncio.fixture
async def api(acl_agent: DevAgent) -> AsyncIterator[ACLHTTP]:
    async with aiohttp.ClientSession() as session:
        yield ACLHTTP(session, acl_agent.url)
