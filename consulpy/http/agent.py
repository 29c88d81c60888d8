"""/v1/agent/*: this agent's own view (self, members, version)."""

from __future__ import annotations

from aiohttp import web

from consulpy.http.endpoint import agent_of, bad_request, endpoint, respond


@endpoint("GET", check_dc=False)
async def agent_self(req: web.Request) -> web.StreamResponse:
    return respond(req, agent_of(req).self_info())


@endpoint("GET", check_dc=False)
async def agent_members(req: web.Request) -> web.StreamResponse:
    q = req.query
    wan = bool(q.get("wan"))
    segment = q.get("segment", "")
    if wan and segment not in ("", "_all"):
        raise bad_request("Cannot provide a segment with wan=true")
    return respond(req, agent_of(req).members(wan=wan))


@endpoint("GET", check_dc=False)
async def agent_version(req: web.Request) -> web.StreamResponse:
    return respond(req, agent_of(req).version_info())


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/agent/self", agent_self),
        web.route("*", "/v1/agent/members", agent_members),
        web.route("*", "/v1/agent/version", agent_version),
    ]
