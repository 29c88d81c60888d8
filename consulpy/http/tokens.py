"""The caller's ACL token, read once per request the way Consul reads it, so that every
handler passes the same token to the server endpoints (which authorize)."""

from __future__ import annotations

from aiohttp import web


def request_token(req: web.Request) -> str:
    """?token=, X-Consul-Token, or a bearer Authorization header; without one, the agent's
    `acl.tokens.default` (as Consul's agent does), so that requests it forwards to the servers
    act as that token rather than as anonymous."""
    token = req.query.get("token", "") or req.headers.get("X-Consul-Token", "")
    auth = req.headers.get("Authorization", "")
    if not token and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    if not token:
        from consulpy.http.endpoint import AGENT  # endpoint imports this module

        agent = req.config_dict.get(AGENT)
        if agent is not None:
            token = str(agent.config.acl.tokens.get("default", "") or "")
    return token
