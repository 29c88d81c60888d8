"""HTTP limits follow the agent's current config (a reload swaps it), and the reload hooks
apply limits.rpc_rate to the server's RPC bucket."""

from __future__ import annotations

import dataclasses

import aiohttp

from consulpy.testing import DevAgent


async def test_http_rules_and_rpc_rate_follow_a_reload() -> None:
    async with DevAgent() as dev:
        agent = dev.agent
        assert agent is not None and agent.server is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{dev.url}/v1/status/leader") as resp:
                assert "X-Reloaded" not in resp.headers
            new = dataclasses.replace(
                agent.config,
                http_config={
                    **agent.config.http_config,
                    "response_headers": {"X-Reloaded": "yes"},
                    "block_endpoints": ["/v1/kv/"],
                },
                limits=dataclasses.replace(agent.config.limits, rpc_rate=5.0, rpc_max_burst=7),
            )
            agent.config = new  # what Agent.reload does with the re-read config
            for hook in agent.reload_hooks:
                hook(new)
            async with http.get(f"{dev.url}/v1/status/leader") as resp:
                assert resp.headers["X-Reloaded"] == "yes"
            async with http.get(f"{dev.url}/v1/kv/a") as resp:
                assert resp.status == 403
        bucket = agent.server.rpc_server.limiter
        assert bucket is not None and (bucket.rate, bucket.burst) == (5.0, 7)
