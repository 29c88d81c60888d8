"""The caller's ACL token, read once per request the way Consul reads it, so that every
handler passes the same token to the server endpoints (which authorize)."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web


def request_token(req: web.Request) -> str:
    """?token=, X-Consul-Token, or a bearer Authorization header; without one, the agent's
    `acl.tokens.default` (as Consul's agent does), so that requests it forwards to the servers
    act as that token rather than as anonymous."""
    token = (req.query.get("token", "") if req.query_string else "") or req.headers.get(
        "X-Consul-Token", ""
    )
    if not token:
        auth = req.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    if not token:
        agent = req.app.get(_agent_key())  # the app has no sub-apps: no config_dict chain
        if agent is not None:
            token = str(agent.config.acl.tokens.get("default", "") or "")
    return token


@functools.cache
def _agent_key() -> web.AppKey[Any]:
    from consulpy.http.endpoint import AGENT  # endpoint imports this module

    return AGENT
