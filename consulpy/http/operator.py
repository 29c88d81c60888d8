"""/v1/operator/raft/* and /v1/operator/autopilot/health."""

from __future__ import annotations

from aiohttp import web

from consulpy.http.endpoint import agent_of, empty_ok, endpoint, respond
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.operator import RaftRemovePeer, TransferLeader
from consulpy.server.endpoints.request import Empty


async def _leader_call(req: web.Request, name: str, payload: object) -> object:
    return await agent_of(req).delegate.apply(name, payload, request_token(req))


@endpoint("GET")
async def raft_configuration(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if "stale" in req.query and agent.server is not None:
        from consulpy.server.operator import raft_configuration as local_configuration

        return respond(req, local_configuration(agent.server))
    return respond(req, await _leader_call(req, "Operator.RaftConfiguration", Empty()))


@endpoint("DELETE")
async def raft_peer(req: web.Request) -> web.StreamResponse:
    payload = RaftRemovePeer(id=req.query.get("id", ""), address=req.query.get("address", ""))
    await _leader_call(req, "Operator.RaftRemovePeer", payload)
    return empty_ok()


@endpoint("POST")
async def transfer_leader(req: web.Request) -> web.StreamResponse:
    payload = TransferLeader(id=req.query.get("id", ""))
    result = await _leader_call(req, "Operator.TransferLeader", payload)
    return respond(req, result)


@endpoint("GET")
async def autopilot_health(req: web.Request) -> web.StreamResponse:
    health = await _leader_call(req, "Operator.AutopilotHealth", Empty())
    return respond(req, health, status=200 if health["Healthy"] else 429)  # type: ignore[index]


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/operator/raft/configuration", raft_configuration),
        web.route("*", "/v1/operator/raft/peer", raft_peer),
        web.route("*", "/v1/operator/raft/transfer-leader", transfer_leader),
        web.route("*", "/v1/operator/autopilot/health", autopilot_health),
    ]
