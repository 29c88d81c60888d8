"""A dev agent with ACLs on and default deny, and helpers that mint scoped tokens."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.acl_support import acl_config as shared_acl_config
from tests.acl_support import acl_ready
from tests.conftest import HTTP

ROOT = "root"
ANON_TEXT = "The anonymous token is used implicitly when a request does not specify a token."


def acl_config(**extra: Any) -> dict[str, Any]:
    return shared_acl_config(ROOT, **extra)


class API(HTTP):
    """Requests with a given token (`token=None`: anonymous, no header at all)."""

    async def call(
        self, method: str, path: str, data: Any = None, token: str | None = ROOT
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Consul-Token": token} if token is not None else {}
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        return await self.request(method, path, data=data, headers=headers)

    async def ok(self, method: str, path: str, data: Any = None, token: str | None = ROOT) -> Any:
        status, _, body = await self.call(method, path, data, token)
        assert status == 200, (status, body)
        return json.loads(body) if body else None

    async def denied(
        self, method: str, path: str, data: Any = None, token: str | None = ROOT
    ) -> str:
        status, _, body = await self.call(method, path, data, token)
        assert status == 403, (status, body)
        return body.decode()

    async def policy(self, rules: str) -> dict[str, Any]:
        name = "p-" + uuid.uuid4().hex[:8]
        return await self.ok("PUT", "/v1/acl/policy", {"Name": name, "Rules": rules})

    async def token(self, rules: str | None = None, **fields: Any) -> dict[str, Any]:
        """A token with a fresh policy holding `rules` (and any other token fields)."""
        body = dict(fields)
        if rules is not None:
            body["Policies"] = [{"ID": (await self.policy(rules))["ID"]}]
        return await self.ok("PUT", "/v1/acl/token", body)


async def ready(dev: DevAgent) -> None:
    await acl_ready(dev, ROOT)


@pytest_asyncio.fixture
async def acl_agent(tmp_path) -> AsyncIterator[DevAgent]:
    async with DevAgent(config=dict(acl_config(), data_dir=str(tmp_path))) as dev:
        await ready(dev)
        yield dev


@pytest_asyncio.fixture
async def api(acl_agent: DevAgent) -> AsyncIterator[API]:
    async with aiohttp.ClientSession() as session:
        yield API(session, acl_agent.url)
