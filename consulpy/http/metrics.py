"""GET /v1/agent/metrics (the in-memory interval as JSON, or Prometheus text) and
/v1/agent/metrics/stream (one pretty JSON summary per finished interval). Both need
agent:read, as in Consul."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import agent_of, endpoint
from consulpy.metrics import METRICS
from consulpy.metrics.registry import Interval
from consulpy.metrics.telemetry import TelemetrySettings

SETTINGS = web.AppKey("telemetry_settings", TelemetrySettings)

NOT_ENABLED = "Prometheus is not enabled since its retention time is not positive"


def _wants_prometheus(req: web.Request) -> bool:
    if req.query.get("format") == "prometheus":
        return True
    accept = req.headers.get("Accept", "")
    if "application/openmetrics-text" in accept:
        return True
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0] == "text/plain" and "version=0.4.0" in fields[1:]:
            return True
    return False


def _settings(req: web.Request) -> TelemetrySettings:
    return req.app.get(SETTINGS) or TelemetrySettings()


@endpoint("GET", check_dc=False)
async def agent_metrics(req: web.Request) -> web.StreamResponse:
    await authorize(req, "agent", "read", agent_of(req).node_name)
    if _wants_prometheus(req):
        settings = _settings(req)
        if not settings.prometheus:
            # Consul answers 200 with no body, the reason in a header.
            return web.Response(status=200, headers={"X-Consul-Reason": NOT_ENABLED})
        # Imported on the first scrape: prometheus_client costs ~1.4 MiB an agent nobody
        # scrapes need not hold.
        from consulpy.metrics import prometheus

        body = prometheus.render(METRICS, settings.prometheus_retention_time)
        return web.Response(body=body, headers={"Content-Type": prometheus.CONTENT_TYPE})
    return web.json_response(METRICS.reported().as_json())


@endpoint("GET", check_dc=False)
async def agent_metrics_stream(req: web.Request) -> web.StreamResponse:
    await authorize(req, "agent", "read", agent_of(req).node_name)
    queue: asyncio.Queue[Interval] = asyncio.Queue(maxsize=8)

    def on_interval(interval: Interval) -> None:
        if not queue.full():
            queue.put_nowait(interval)

    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    METRICS.interval_listeners.append(on_interval)
    try:
        await resp.prepare(req)
        await resp.write(b"")
        while True:
            interval = await queue.get()
            await resp.write(json.dumps(interval.as_json(), indent=4).encode() + b"\n")
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        METRICS.interval_listeners.remove(on_interval)
    return resp


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/agent/metrics", agent_metrics),
        web.route("*", "/v1/agent/metrics/stream", agent_metrics_stream),
    ]
