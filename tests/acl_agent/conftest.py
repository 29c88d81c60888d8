"""A dev agent with ACLs on (default deny) and helpers to mint tokens with given rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from consulpy.testing import DevAgent
from tests.acl_state.conftest import ACLHTTP, MGMT, acl_config, ready

RECOVERY = "9e3c0000-0000-4000-8000-00000000beef"


@pytest_asyncio.fixture
async def acl_agent(tmp_path) -> AsyncIterator[DevAgent]:
    config = acl_config(tokens={"initial_management": MGMT, "agent_recovery": RECOVERY})
    async with DevAgent(node_name="n1", config=dict(config, data_dir=str(tmp_path))) as dev:
        await ready(dev)
        yield dev


@pytest_asyncio.fixture
async def api(acl_agent: DevAgent) -> AsyncIterator[ACLHTTP]:
    async with aiohttp.ClientSession() as session:
        yield ACLHTTP(session, acl_agent.url)


async def token_with(api: ACLHTTP, rules: str) -> dict[str, str]:
    """A fresh token holding one policy with `rules`; returns the token object."""
    import uuid

    policy = await api.ok("PUT", "/v1/acl/policy", {"Name": f"p-{uuid.uuid4()}", "Rules": rules})
    return await api.ok("PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]})  # type: ignore[no-any-return]
