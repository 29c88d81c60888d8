"""GET /v1/agent/monitor: the agent's log lines, streamed as they are logged, at the level the
caller asks for (independent of the agent's own log_level), as text or JSON lines."""

from __future__ import annotations

import structlog
from aiohttp import web

from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import HTTPError, agent_of, endpoint
from consulpy.log import LOGS, parse_level

log = structlog.get_logger("consulpy.http")

# Consul flushes the stream at least this often.
FLUSH_INTERVAL = 0.2


@endpoint("GET", check_dc=False)
async def agent_monitor(req: web.Request) -> web.StreamResponse:
    await authorize(req, "agent", "read", agent_of(req).node_name)  # Consul: agent:read
    name = req.query.get("loglevel", "INFO") or "INFO"
    level = parse_level(name)
    if level is None or name.lower() == "warning":
        raise HTTPError(400, f"Unknown log level: {name}")
    json = "logjson" in req.query
    monitor = LOGS.add_monitor(level, json)
    try:
        resp = web.StreamResponse(status=200)
        resp.content_type = "text/plain"
        resp.charset = "utf-8"
        await resp.prepare(req)
        while True:
            lines = await monitor.next_lines(FLUSH_INTERVAL)
            if lines:
                await resp.write(("\n".join(lines) + "\n").encode("utf-8"))
            if monitor.dropped:
                dropped, monitor.dropped = monitor.dropped, 0
                log.warning("Dropped logs during monitor request", count=dropped)
            transport = req.transport
            if transport is None or transport.is_closing():
                break
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        LOGS.remove_monitor(monitor)
    return resp


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/agent/monitor", agent_monitor)]
