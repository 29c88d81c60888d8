"""/v1/operator/raft/* and /v1/operator/autopilot/health."""

from __future__ import annotations

from aiohttp import web

from consulpy.http.endpoint import agent_of, bad_request, empty_ok, endpoint, respond


async def _leader_call(req: web.Request, name: str, args: dict[str, object]) -> object:
    return await agent_of(req).delegate.leader_call(name, args)


@endpoint("GET")
async def raft_configuration(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if "stale" in req.query and agent.server is not None:
        from consulpy.server.operator import raft_configuration as local_configuration

        return respond(req, local_configuration(agent.server))
    return respond(req, await _leader_call(req, "Operator.RaftConfiguration", {}))


@endpoint("DELETE")
async def raft_peer(req: web.Request) -> web.StreamResponse:
    peer_id = req.query.get("id", "")
    address = req.query.get("address", "")
    if not peer_id and not address:
        raise bad_request(
            "Must specify either ?id with the server's ID or ?address with IP:port of peer "
            "to remove"
        )
    if peer_id and address:
        raise bad_request("Must specify only one of ?id or ?address")
    await _leader_call(req, "Operator.RaftRemovePeer", {"id": peer_id, "address": address})
    return empty_ok()


@endpoint("POST")
async def transfer_leader(req: web.Request) -> web.StreamResponse:
    result = await _leader_call(req, "Operator.TransferLeader", {"id": req.query.get("id", "")})
    return respond(req, result)


@endpoint("GET")
async def autopilot_health(req: web.Request) -> web.StreamResponse:
    health = await _leader_call(req, "Operator.AutopilotHealth", {})
    return respond(req, health, status=200 if health["Healthy"] else 429)  # type: ignore[index]


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/operator/raft/configuration", raft_configuration),
        web.route("*", "/v1/operator/raft/peer", raft_peer),
        web.route("*", "/v1/operator/raft/transfer-leader", transfer_leader),
        web.route("*", "/v1/operator/autopilot/health", autopilot_health),
    ]
