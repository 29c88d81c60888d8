"""/v1/coordinate/* shapes and errors, and `?near=` ordering by estimated round-trip time."""

from __future__ import annotations

import json

from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually
from tests.http.test_catalog import register

ZERO = [0.0] * 8


def coord(x: float, error: float = 0.2) -> dict:
    """A coordinate `x` seconds along the first axis (height: the minimum)."""
    return {"Vec": [x] + [0.0] * 7, "Error": error, "Adjustment": 0.0, "Height": 1e-05}


async def put_coord(http: HTTP, node: str, c: dict) -> None:
    status, _, body = await http.put(
        "/v1/coordinate/update", json.dumps({"Node": node, "Coord": c})
    )
    assert (status, body) == (200, b""), body


async def wait_coords(http: HTTP, nodes: set[str]) -> list[dict]:
    async def seen() -> bool:
        status, _, body = await http.get("/v1/coordinate/nodes")
        return status == 200 and {r["Node"] for r in json.loads(body)} >= nodes

    await eventually(seen, 10, what=f"coordinates of {sorted(nodes)} stored")
    return await http.json("GET", "/v1/coordinate/nodes")


async def test_datacenters_lists_the_server_with_its_coordinate(http: HTTP, agent) -> None:
    dcs = await http.json("GET", "/v1/coordinate/datacenters")
    assert len(dcs) == 1 and set(dcs[0]) == {"Datacenter", "AreaID", "Coordinates"}
    assert dcs[0]["Datacenter"] == "dc1" and dcs[0]["AreaID"] == "WAN"
    (entry,) = dcs[0]["Coordinates"]
    assert entry["Node"] == "consulpy-test"
    assert set(entry["Coord"]) == {"Vec", "Error", "Adjustment", "Height"}
    assert len(entry["Coord"]["Vec"]) == 8


async def test_update_then_node_and_nodes(http: HTTP) -> None:
    status, _, body = await http.get("/v1/coordinate/node/consulpy-test")
    assert (status, body) == (404, b"")  # nothing reported yet
    await put_coord(http, "consulpy-test", coord(0.001))
    rows = await wait_coords(http, {"consulpy-test"})
    assert rows == [{"Node": "consulpy-test", "Segment": "", "Coord": coord(0.001)}]
    status, headers, body = await http.get("/v1/coordinate/node/consulpy-test")
    assert status == 200 and int(headers["X-Consul-Index"]) > 0
    assert json.loads(body) == rows
    assert await http.json("GET", "/v1/coordinate/nodes?segment=") == rows
    assert await http.json("GET", "/v1/coordinate/nodes?segment=alpha") == []


async def test_update_for_unknown_node_is_dropped(http: HTTP) -> None:
    await put_coord(http, "ghost", coord(0.002))
    await put_coord(http, "consulpy-test", coord(0.001))
    rows = await wait_coords(http, {"consulpy-test"})
    assert [r["Node"] for r in rows] == ["consulpy-test"]
    status, _, _ = await http.get("/v1/coordinate/node/ghost")
    assert status == 404


async def test_deregistered_node_loses_its_coordinate(http: HTTP) -> None:
    await register(http, {"Node": "far", "Address": "10.0.0.9"})
    await put_coord(http, "far", coord(0.05))
    await wait_coords(http, {"far"})
    status, _, _ = await http.put("/v1/catalog/deregister", json.dumps({"Node": "far"}))
    assert status == 200
    status, _, _ = await http.get("/v1/coordinate/node/far")
    assert status == 404


async def test_update_errors(http: HTTP) -> None:
    status, _, body = await http.put("/v1/coordinate/update", "")
    assert (status, body) == (400, b"Request decode failed: EOF")
    status, _, body = await http.put("/v1/coordinate/update", '{"Node": 5}')
    assert status == 400 and body.startswith(b"Request decode failed: json: cannot unmarshal")
    short = {"Vec": [0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}
    status, _, body = await http.put(
        "/v1/coordinate/update", json.dumps({"Node": "consulpy-test", "Coord": short})
    )
    assert (status, body) == (500, b"incompatible coordinate")
    status, _, _ = await http.get("/v1/coordinate/update")
    assert status == 405
    status, _, _ = await http.put("/v1/coordinate/nodes")
    assert status == 405


async def test_nodes_blocks_until_a_coordinate_arrives(http: HTTP) -> None:
    status, headers, _ = await http.get("/v1/coordinate/nodes")
    index = headers["X-Consul-Index"]
    import asyncio

    waiter = asyncio.ensure_future(http.get(f"/v1/coordinate/nodes?index={index}&wait=20s"))
    await put_coord(http, "consulpy-test", coord(0.003))
    status, headers, body = await asyncio.wait_for(waiter, 20)
    assert status == 200 and int(headers["X-Consul-Index"]) > int(index)
    assert [r["Node"] for r in json.loads(body)] == ["consulpy-test"]


async def test_near_orders_by_estimated_rtt(http: HTTP) -> None:
    # Three nodes on a line: a at 0 ms, b at 30 ms, c at 10 ms; d has no coordinate.
    for name, x in (("a", 0.0), ("b", 0.030), ("c", 0.010)):
        await register(
            http,
            {
                "Node": name,
                "Address": "10.1.0.1",
                "Service": {"Service": "web", "ID": f"web-{name}"},
                "Check": {"Name": "up", "ServiceID": f"web-{name}", "Status": "critical"},
            },
        )
        await put_coord(http, name, coord(x))
    await register(
        http,
        {"Node": "d", "Address": "10.1.0.4", "Service": {"Service": "web", "ID": "web-d"}},
    )
    await wait_coords(http, {"a", "b", "c"})

    nodes = await http.json("GET", "/v1/catalog/nodes?near=b")
    assert [n["Node"] for n in nodes][:3] == ["b", "c", "a"]
    assert [n["Node"] for n in nodes][3:] == ["consulpy-test", "d"]  # no coordinate: kept last
    plain = await http.json("GET", "/v1/catalog/nodes")
    assert [n["Node"] for n in plain] == ["a", "b", "c", "consulpy-test", "d"]

    rows = await http.json("GET", "/v1/catalog/service/web?near=a")
    assert [r["Node"] for r in rows] == ["a", "c", "b", "d"]
    entries = await http.json("GET", "/v1/health/service/web?near=b")
    assert [e["Node"]["Node"] for e in entries] == ["b", "c", "a", "d"]
    checks = await http.json("GET", "/v1/health/checks/web?near=c")
    assert [c["Node"] for c in checks] == ["c", "a", "b"]
    critical = await http.json("GET", "/v1/health/state/critical?near=b")
    assert [c["Node"] for c in critical] == ["b", "c", "a"]
    # A source without a coordinate, or unknown: the usual order.
    assert await http.json("GET", "/v1/catalog/service/web?near=d") == await http.json(
        "GET", "/v1/catalog/service/web"
    )
    assert [r["Node"] for r in await http.json("GET", "/v1/catalog/service/web?near=zz")] == [
        "a",
        "b",
        "c",
        "d",
    ]
    # _agent is this agent's node: give it a coordinate next to c.
    await put_coord(http, "consulpy-test", coord(0.011))
    await wait_coords(http, {"consulpy-test"})

    async def agent_sorted() -> bool:
        rows = await http.json("GET", "/v1/catalog/service/web?near=_agent")
        return [r["Node"] for r in rows] == ["c", "a", "b", "d"]

    await eventually(agent_sorted, 10, what="?near=_agent sorts from the agent's coordinate")


async def test_prepared_query_near_sorts_by_rtt(http: HTTP) -> None:
    for name, x in (("a", 0.0), ("b", 0.030), ("c", 0.010)):
        await register(
            http,
            {"Node": name, "Address": "10.1.0.1", "Service": {"Service": "db", "ID": f"db-{name}"}},
        )
        await put_coord(http, name, coord(x))
    await wait_coords(http, {"a", "b", "c"})
    body = json.dumps({"Name": "db", "Service": {"Service": "db", "Near": "b"}})
    qid = (await http.json("POST", "/v1/query", body))["ID"]
    for _ in range(5):  # the shuffle must not survive the RTT sort
        result = await http.json("GET", f"/v1/query/{qid}/execute")
        assert [n["Node"]["Node"] for n in result["Nodes"]] == ["b", "c", "a"]
    result = await http.json("GET", f"/v1/query/{qid}/execute?near=a")
    assert [n["Node"]["Node"] for n in result["Nodes"]] == ["a", "c", "b"]


async def test_disabled_coordinates_answer_401() -> None:
    import aiohttp

    async with (
        DevAgent(config={"disable_coordinates": True}) as dev,
        aiohttp.ClientSession() as session,
    ):
        http = HTTP(session, dev.url)
        for path in ("/v1/coordinate/datacenters", "/v1/coordinate/nodes", "/v1/coordinate/node/x"):
            status, _, body = await http.get(path)
            assert (status, body) == (401, b"Coordinate support disabled"), path
        status, _, body = await http.put("/v1/coordinate/update", "{}")
        assert (status, body) == (401, b"Coordinate support disabled")
        assert dev.agent is not None and dev.agent.coordinates is None
        assert dev.agent.gossip.coordinate() is None
        _, _, body = await http.get("/v1/agent/self")
        assert json.loads(body)["Coord"] is None


async def test_agent_sends_its_gossip_coordinate() -> None:
    import aiohttp

    fast = {"sync_coordinate_interval_min": "50ms"}
    async with DevAgent(config=fast) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        rows = await wait_coords(http, {"consulpy-test"})
        assert dev.agent is not None and dev.agent.coordinates is not None
        assert dev.agent.coordinates.sent >= 1
        (row,) = rows
        assert row["Segment"] == "" and len(row["Coord"]["Vec"]) == 8
        assert row["Coord"]["Error"] == 1.5  # alone: nothing to measure against yet
