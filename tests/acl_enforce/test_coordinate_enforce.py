"""/v1/coordinate under default deny: node:write to report, node:read to see (lists filtered
with the header), datacenters open to anyone as in Consul."""

from __future__ import annotations

import json

from tests.acl_enforce.conftest import API
from tests.helpers import eventually

FILTERED = "X-Consul-Results-Filtered-By-ACLs"


def _coord(x: float) -> dict:
    return {"Vec": [x] + [0.0] * 7, "Error": 0.5, "Adjustment": 0.0, "Height": 1e-05}


async def test_coordinates_need_node_rules(api: API) -> None:
    for node in ("n1", "n2"):
        body = {"Node": node, "Address": "10.0.0.1"}
        assert await api.ok("PUT", "/v1/catalog/register", body) is True
    update = {"Node": "n1", "Coord": _coord(0.01)}
    text = await api.denied("PUT", "/v1/coordinate/update", update, token=None)
    assert "node:write" in text
    writer = await api.token('node "n1" { policy = "write" }')
    status, _, body = await api.call(
        "PUT", "/v1/coordinate/update", update, token=writer["SecretID"]
    )
    assert (status, body) == (200, b"")
    await api.denied(
        "PUT", "/v1/coordinate/update", {"Node": "n2", "Coord": _coord(0.02)}, writer["SecretID"]
    )
    assert (
        await api.ok("PUT", "/v1/coordinate/update", {"Node": "n2", "Coord": _coord(0.02)}) is None
    )

    async def both() -> bool:
        rows = await api.ok("GET", "/v1/coordinate/nodes")
        return {r["Node"] for r in rows} >= {"n1", "n2"}

    await eventually(both, 10, what="both coordinates stored")
    reader = await api.token('node "n1" { policy = "read" }')
    status, headers, body = await api.call("GET", "/v1/coordinate/nodes", token=reader["SecretID"])
    assert status == 200 and headers[FILTERED] == "true"
    assert [r["Node"] for r in json.loads(body)] == ["n1"]
    rows = await api.ok("GET", "/v1/coordinate/node/n1", token=reader["SecretID"])
    assert rows[0]["Coord"] == _coord(0.01)
    await api.denied("GET", "/v1/coordinate/node/n2", token=reader["SecretID"])
    dcs = await api.ok("GET", "/v1/coordinate/datacenters", token=None)
    assert dcs[0]["Datacenter"] == "dc1"
