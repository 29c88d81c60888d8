"""The caller's ACL token, read once per request the way Consul reads it, so that every
handler passes the same token to the server endpoints (which authorize)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent


def request_token(req: web.Request, agent: Agent | None = None) -> str:
    """?token=, X-Consul-Token, or a bearer Authorization header; without one, the agent's
    `acl.tokens.default` (as Consul's agent does), so that requests it forwards to the servers
    act as that token rather than as anonymous. A caller holding the `agent` passes it."""
    if req.query_string:
        token = req.query.get("token", "")
        if token:
            return token
    headers = req.headers
    token = headers.get("X-Consul-Token", "")
    if token:
        return token
    auth = headers.get("Authorization")
    if auth is not None and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
        if token:
            return token
    if agent is None:
        agent = req.app.get(_agent_key())  # the app has no sub-apps: no config_dict chain
        if agent is None:
            return ""
    return str(agent.config.acl.tokens.get("default", "") or "")


@functools.cache
def _agent_key() -> web.AppKey[Any]:
    from consulpy.http.endpoint import AGENT  # endpoint imports this module

    return AGENT
