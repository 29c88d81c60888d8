"""`consulpy connect envoy -bootstrap -token <service token>` with ACLs on: the token goes into
the bootstrap's x-consul-token metadata."""

from __future__ import annotations

import asyncio
import json

from consulpy.testing import DevAgent
from tests.acl_state.conftest import ACLHTTP
from tests.cli.agentproc import consulpy


async def test_bootstrap_with_a_service_identity_token(api: ACLHTTP, acl_agent: DevAgent) -> None:
    body = {"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}
    await api.ok("PUT", "/v1/agent/service/register", body)
    identity = {"ServiceIdentities": [{"ServiceName": "web"}]}
    secret = (await api.ok("PUT", "/v1/acl/token", identity))["SecretID"]
    args = ("connect", "envoy", "-sidecar-for", "web", "-bootstrap", "-grpc-addr")
    out = await asyncio.to_thread(
        consulpy,
        *args,
        "127.0.0.1:9999",
        "-token",
        secret,
        "-http-addr",
        acl_agent.http_addr,
    )
    assert out.returncode == 0, out.stderr
    boot = json.loads(out.stdout)
    metadata = boot["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"]
    assert {"key": "x-consul-token", "value": secret} in metadata
