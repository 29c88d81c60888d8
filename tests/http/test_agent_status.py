"""/v1/status/*, /v1/agent/self, /v1/agent/members."""

from __future__ import annotations

from tests.conftest import HTTP


async def test_status_leader_and_peers(http: HTTP, agent) -> None:
    leader = await http.json("GET", "/v1/status/leader")
    assert leader == agent.agent.server.rpc_address and leader.startswith("127.0.0.1:")
    assert await http.json("GET", "/v1/status/peers") == [leader]
    _, headers, _ = await http.get("/v1/status/leader")
    assert "X-Consul-Index" not in headers


async def test_agent_self_has_what_clients_read(http: HTTP, agent) -> None:
    me = await http.json("GET", "/v1/agent/self")
    assert me["Config"]["Datacenter"] == "dc1"
    assert me["Config"]["NodeName"] == agent.agent.node_name
    assert me["Config"]["Server"] is True
    assert me["Config"]["Version"].count(".") == 2
    assert me["Member"]["Name"] == agent.agent.node_name and me["Member"]["Addr"] == "127.0.0.1"
    assert all(isinstance(v, str) for v in me["Stats"]["consul"].values())
    assert me["Coord"]["Vec"] == [0.0] * 8


async def test_agent_members(http: HTTP, agent) -> None:
    [member] = await http.json("GET", "/v1/agent/members")
    assert member["Name"] == agent.agent.node_name
    assert member["Status"] == 1
    assert member["Tags"]["role"] == "consul" and member["Tags"]["dc"] == "dc1"
    # The test agent runs with ports.serf_wan = -1: in no WAN pool, so no WAN members, as
    # Consul answers (tests/wan has servers in one).
    assert await http.json("GET", "/v1/agent/members?wan=1") == []
    status, _, body = await http.get("/v1/agent/members?wan=1&segment=x")
    assert status == 400 and body == b"Cannot provide a segment with wan=true"


async def test_root_and_non_api_paths(http: HTTP) -> None:
    status, _, body = await http.get("/")
    assert status == 200
    status, _, body = await http.get("/something")
    assert status == 404 and b"/v1/" in body
