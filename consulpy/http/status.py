"""/v1/status/leader and /v1/status/peers (no index headers, as in Consul)."""

from __future__ import annotations

from aiohttp import web

from consulpy.http.endpoint import agent_of, endpoint, respond


@endpoint("GET")
async def status_leader(req: web.Request) -> web.StreamResponse:
    return respond(req, (await agent_of(req).delegate.status())["leader"])


@endpoint("GET")
async def status_peers(req: web.Request) -> web.StreamResponse:
    return respond(req, (await agent_of(req).delegate.status())["peers"])


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/status/leader", status_leader),
        web.route("*", "/v1/status/peers", status_peers),
    ]
