"""A prepared query's `Near` over DNS: answers come sorted by estimated round-trip time from
the near node (here `_agent`, the agent answering DNS), as Consul's execute sorts them."""

from __future__ import annotations

import json

import aiohttp

from tests.dns.support import dns_agent
from tests.helpers import eventually


def _coord(x: float) -> dict:
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-05}


async def test_prepared_query_near_agent_orders_dns_answers_by_rtt() -> None:
    async with dns_agent() as client, aiohttp.ClientSession() as http:
        url = client.dev.url
        # The agent sits at 0; n2 is 1 ms away, n3 10 ms, n1 30 ms.
        for node, x in (("consulpy-test", 0.0), ("n1", 0.030), ("n2", 0.001), ("n3", 0.010)):
            body = json.dumps({"Node": node, "Coord": _coord(x)})
            async with http.put(url + "/v1/coordinate/update", data=body) as resp:
                assert resp.status == 200

        async def stored() -> bool:
            async with http.get(url + "/v1/coordinate/nodes") as resp:
                return len(await resp.json()) == 4

        await eventually(stored, 10, what="coordinates stored")
        query = {"Name": "near-web", "Service": {"Service": "web", "Near": "_agent"}}
        async with http.post(url + "/v1/query", data=json.dumps(query)) as resp:
            assert resp.status == 200
        for _ in range(5):  # the execute shuffles first; the RTT sort must win every time
            resp = await client.ask("_near-web._tcp.query.consul", "SRV")
            (rrset,) = resp.answer
            ports = [r.port for r in rrset]
            assert ports == [8081, 8082, 8080], ports  # n2, n3, n1
