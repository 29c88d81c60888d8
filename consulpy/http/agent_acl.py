"""Authorization of the agent's own endpoints (/v1/agent/..., agent connect endpoints): the
caller's token resolved by the agent's resolver, Consul's 403 texts. Everything is allowed when
`acl.enabled` is false (the agent then has no resolver)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.agent.acl import ACLNotFound, Resolved
from consulpy.http.endpoint import HTTPError, agent_of
from consulpy.http.tokens import request_token


async def caller(req: web.Request) -> Resolved | None:
    """The request's identity, or None when ACLs are disabled. Unknown secret: 403."""
    acl = getattr(agent_of(req), "acl", None)
    if acl is None:
        return None
    try:
        return await acl.resolve(request_token(req))
    except ACLNotFound as exc:
        raise HTTPError(403, "ACL not found") from exc


def require(who: Resolved | None, resource: str, access: str, segment: str | None = None) -> None:
    """Raise Consul's 403 unless `who` has `access` on `resource` (labelled `segment`)."""
    if who is None:
        return
    if not who.authorizer.allowed(resource, segment or "", access):
        raise HTTPError(403, str(who.denied(resource, access, segment)))


async def authorize(
    req: web.Request, resource: str, access: str, segment: str | None = None
) -> Resolved | None:
    who = await caller(req)
    require(who, resource, access, segment)
    return who


def can(who: Resolved | None, resource: str, access: str, segment: str) -> bool:
    return who is None or who.authorizer.allowed(resource, segment, access)


def filtered_header(req: web.Request, who: Resolved | None, dropped: bool) -> dict[str, Any]:
    """X-Consul-Results-Filtered-By-ACLs, only when the request carried a token (never for
    anonymous callers, as Consul)."""
    if who is None or not request_token(req):
        return {}
    return {"X-Consul-Results-Filtered-By-ACLs": "true" if dropped else "false"}
