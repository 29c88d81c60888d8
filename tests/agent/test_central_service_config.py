"""enable_central_service_config: by default a sidecar's protocol comes from the service's
service-defaults entry (Consul merges central config into the registration); set to false,
the agent leaves registrations as written and a proxy without its own protocol is TCP."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually_value


async def _sidecar_protocol(config: dict[str, Any]) -> str:
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        entry = {"Kind": "service-defaults", "Name": "api", "Protocol": "http"}
        status, _, text = await http.put("/v1/config", json.dumps(entry))
        assert status == 200, text
        service = {"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}}
        status, _, text = await http.put("/v1/agent/service/register", json.dumps(service))
        assert status == 200, text
        assert dev.agent is not None
        lookup = dev.agent.proxy_config.lookup
        snapshot = await eventually_value(
            lambda: lookup.current("api-sidecar-proxy"), what="the sidecar's configuration"
        )
        return str(snapshot.protocol)


@pytest.mark.parametrize(("enabled", "protocol"), [(True, "http"), (False, "tcp")])
async def test_sidecar_protocol_follows_central_config_only_when_enabled(
    enabled: bool, protocol: str
) -> None:
    config = {"enable_central_service_config": enabled}
    assert await _sidecar_protocol(config) == protocol
