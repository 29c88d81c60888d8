"""`/v1/internal/ui/metrics-proxy/<path>`: the UI's door to a metrics backend
(`ui_config.metrics_proxy`), as Consul serves it.

Only paths in `path_allowlist` (below `base_url`) are proxied, the caller's Consul token never
leaves the agent, `add_headers` are added (a `Host` entry sets the Host header), and the
backend's answer is streamed back. It needs `node:read` and `service:read` on every name
(prefix ""), since metrics cover the whole catalog.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from consulpy.acl.resolver import ACLNotFound
from consulpy.http.endpoint import agent_of, endpoint, text_error
from consulpy.ui import serve

PREFIX = "/v1/internal/ui/metrics-proxy"
# Never forwarded: the caller's Consul credentials and hop-by-hop headers.
DROP_REQUEST = frozenset(
    {
        "host",
        "x-consul-token",
        "authorization",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "proxy-authorization",
    }
)
PASS_RESPONSE = ("Content-Type", "Content-Encoding", "Cache-Control", "Date", "Last-Modified")
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


def _header_token(req: web.Request) -> str:
    """The token from headers only (a ?token= would end up in the backend's logs)."""
    token = req.headers.get("X-Consul-Token", "")
    auth = req.headers.get("Authorization", "")
    if not token and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    return token


def target(base_url: str, sub: str) -> tuple[str, str] | None:
    """(backend path, path below base) for `sub`, cleaned; None when it escapes the base."""
    base_path = urlsplit(base_url).path.rstrip("/")
    joined = posixpath.normpath(f"{base_path}/{sub.lstrip('/')}")
    if joined != base_path and not joined.startswith(base_path + "/"):
        return None
    return joined, joined[len(base_path) :] or "/"


@endpoint("GET")
async def metrics_proxy(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    config = agent.config
    if not serve.enabled(config):
        return text_error(404, "UI is not enabled")
    proxy = config.ui_config.metrics_proxy
    base_url = str(proxy.get("base_url") or "")
    if not base_url:
        return text_error(404, "Metrics proxy is not enabled")
    acl = getattr(agent, "acl", None)
    if acl is not None:
        try:
            who = await acl.resolve(
                _header_token(req) or str(config.acl.tokens.get("default") or "")
            )
        except ACLNotFound:
            return text_error(403, "ACL not found")
        for resource in ("node", "service"):
            if not who.authorizer.allowed(resource, "", "read"):
                return text_error(403, str(who.denied(resource, "read", None)))
    raw = req.rel_url.raw_path
    sub = raw[len(PREFIX) :] if raw.startswith(PREFIX) else "/"
    found = target(base_url, unquote(sub))
    if found is None:
        return text_error(400, "Invalid path.")
    path, below = found
    if below not in proxy.get("path_allowlist", ()):
        return web.Response(status=403)
    parts = urlsplit(base_url)
    url = urlunsplit((parts.scheme, parts.netloc, path, req.rel_url.raw_query_string, ""))
    headers = {k: v for k, v in req.headers.items() if k.lower() not in DROP_REQUEST}
    for extra in proxy.get("add_headers", ()):
        headers[extra["name"]] = extra["value"]  # "Host" included: it sets the Host header
    async with aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session:
        try:
            upstream = await session.get(url, headers=headers, allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return text_error(502, f"error proxying to the metrics backend: {exc}")
        async with upstream:
            resp = web.StreamResponse(
                status=upstream.status,
                headers={k: upstream.headers[k] for k in PASS_RESPONSE if k in upstream.headers},
            )
            await resp.prepare(req)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
