"""locality (Consul 1.17+): the agent's region and zone are stored on its node and on the
services registered on it that do not name their own, and shown in catalog output."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually_value

HERE = {"Region": "us-east-1", "Zone": "us-east-1a"}


async def test_node_and_services_carry_the_agent_locality() -> None:
    config = {"locality": {"region": "us-east-1", "zone": "us-east-1a"}}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        node = dev.agent.node_name if dev.agent else ""
        for body in (
            {"Name": "web", "Port": 80},
            {"Name": "db", "Port": 5432, "Locality": {"Region": "eu-west-1", "Zone": "b"}},
        ):
            status, _, text = await http.put("/v1/agent/service/register", json.dumps(body))
            assert status == 200, text

        async def catalog(path: str) -> Any:
            found = await http.json("GET", path)
            return found or None

        web = await eventually_value(lambda: catalog("/v1/catalog/service/web"), what="web")
        assert web[0]["ServiceLocality"] == HERE
        db = await eventually_value(lambda: catalog("/v1/catalog/service/db"), what="db")
        assert db[0]["ServiceLocality"] == {"Region": "eu-west-1", "Zone": "b"}
        assert (await http.json("GET", "/v1/agent/service/web"))["Locality"] == HERE
        services = await http.json("GET", f"/v1/catalog/node/{node}")
        assert services["Node"]["Locality"] == HERE


async def test_without_locality_nothing_is_shown(http: HTTP) -> None:
    status, _, text = await http.put("/v1/agent/service/register", '{"Name": "web"}')
    assert status == 200, text
    web = await eventually_value(
        lambda: http.json("GET", "/v1/catalog/service/web"), what="web in the catalog"
    )
    assert web[0]["ServiceLocality"] is None
    nodes = await http.json("GET", "/v1/catalog/nodes")
    assert "Locality" not in nodes[0]


async def test_catalog_register_stores_a_node_locality(http: HTTP) -> None:
    body = {"Node": "ext", "Address": "10.1.1.1", "Locality": {"Region": "r", "Zone": "z"}}
    assert (await http.json("PUT", "/v1/catalog/register", json.dumps(body))) is True
    found = await http.json("GET", "/v1/catalog/node/ext")
    assert found["Node"]["Locality"] == {"Region": "r", "Zone": "z"}
