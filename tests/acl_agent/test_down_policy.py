"""down_policy on the agent's resolver when no server answers: allow, deny, extend-cache and
async-cache (stale entries served), with a fake delegate and a fake clock (no waiting)."""

from __future__ import annotations

from typing import Any

import pytest

from consulpy.agent.acl import AgentACL
from consulpy.agent.client import NoServersError
from consulpy.config import load_agent_config

POLICY = {"ID": "p1", "Name": "p1", "Rules": 'agent "n1" { policy = "read" }', "ModifyIndex": 1}
BUNDLE = {
    "Token": {"AccessorID": "a1", "SecretID": "s1", "Policies": [{"ID": "p1", "Name": "p1"}]},
    "Policies": [POLICY],
    "Roles": [],
}


class Servers:
    def __init__(self) -> None:
        self.up = True
        self.reads = 0

    async def read(self, name: str, args: Any, opts: Any, token: str | None = None) -> Any:
        assert name == "ACL.ResolveToken"
        if not self.up:
            raise NoServersError()
        self.reads += 1
        return None, (BUNDLE if args["secret"] == "s1" else None)


def make(down_policy: str) -> tuple[AgentACL, Servers, list[float]]:
    acl = {"acl": {"enabled": True, "default_policy": "deny", "down_policy": down_policy}}
    acl["acl"]["tokens"] = {"agent_recovery": "rec"}
    config = load_agent_config(["-dev", "-node=n1"], extra_sources=[acl])
    now = [1000.0]
    servers = Servers()
    return AgentACL(config.acl, servers, "n1", "dc1", clock=lambda: now[0]), servers, now


async def allowed(acl: AgentACL, secret: str) -> bool:
    who = await acl.resolve(secret)
    return who.authorizer.allowed("agent", "n1", "read")


@pytest.mark.parametrize(
    ("policy", "cached", "unseen"),
    [
        ("extend-cache", True, False),
        ("async-cache", True, False),
        ("deny", False, False),
        ("allow", True, True),
    ],
)
async def test_servers_down(policy: str, cached: bool, unseen: bool) -> None:
    acl, servers, now = make(policy)
    assert await allowed(acl, "s1")
    servers.up = False
    now[0] += 3600  # every cache entry is stale
    assert await allowed(acl, "s1") is cached
    assert await allowed(acl, "s2") is unseen
    # The recovery token needs no server.
    assert await allowed(acl, "rec")
    await acl.resolver.wait_refreshes()


async def test_cache_serves_within_ttl_and_refreshes_after() -> None:
    acl, servers, now = make("extend-cache")
    assert await allowed(acl, "s1")
    assert await allowed(acl, "s1")
    assert servers.reads == 1
    now[0] += 31
    assert await allowed(acl, "s1")
    assert servers.reads == 2
