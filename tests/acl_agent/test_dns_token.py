"""DNS reads carry the agent's DNS token (acl.tokens.dns, else default, else anonymous), read
per query so PUT /v1/agent/token/dns applies at once; with ACLs off they carry none."""

from __future__ import annotations

from typing import Any

from consulpy.agent.acl import dns_token
from consulpy.config import load_agent_config
from consulpy.dns.lookup import Lookups
from consulpy.dns.settings import DNSSettings


class Recorder:
    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    async def read(self, name: str, args: Any, opts: Any, token: str | None = None) -> Any:
        self.tokens.append(token)
        return None, []


class FakeAgent:
    def __init__(self, acl: dict[str, Any] | None) -> None:
        sources = [acl] if acl else []
        self.config = load_agent_config(["-dev"], extra_sources=sources)


async def _tokens(acl: dict[str, Any] | None, change: dict[str, str] | None = None) -> list:
    agent = FakeAgent(acl)
    reader = Recorder()
    lookups = Lookups(reader, DNSSettings.from_agent_config(agent.config))
    lookups.token = dns_token(agent)
    await lookups.service_nodes("web")
    if change:
        agent.config.acl.tokens.update(change)
        await lookups.service_nodes("web")
    return reader.tokens


async def test_dns_reads_carry_the_dns_or_default_token() -> None:
    assert await _tokens(None) == [None]
    on = {"acl": {"enabled": True, "tokens": {"default": "d"}}}
    assert await _tokens(on, {"dns": "x"}) == ["d", "x"]
    bare = {"acl": {"enabled": True}}
    assert await _tokens(bare) == [""]
