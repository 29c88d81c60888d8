"""The aiohttp application (every /v1 route, Consul's 404s, the always-present headers) and
the HTTP listeners that serve it. The composition root (`consulpy.runtime`) builds both."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence

import structlog
from aiohttp import web

from consulpy.agent.agent import Agent
from consulpy.http import (
    acl,
    catalog,
    config_entries,
    connect,
    coordinate,
    discovery_chain,
    gossip_api,
    health,
    internal_ui,
    kv,
    metrics,
    monitor,
    openapi,
    operator,
    prepared_query,
    session,
    snapshot,
    status,
    txn,
)
from consulpy.http import agent as agent_api
from consulpy.http import limits as http_limits
from consulpy.http.endpoint import AGENT, text_error
from consulpy.http.errors import error_middleware, escape_headers
from consulpy.http.inflight import InFlight
from consulpy.log import enabled as log_enabled
from consulpy.metrics import METRICS
from consulpy.metrics.telemetry import TelemetrySettings
from consulpy.ui import serve as ui_serve

# Enough for the largest body any endpoint accepts; endpoints enforce their own limits with
# Consul's error texts before this one could trigger.
BODY_SLACK = 64 * 1024
log = structlog.get_logger("consulpy.http")

# On stop, short requests in flight get this long to finish; blocking queries, monitors and
# other long requests are cancelled at once and their connections closed (see inflight.py).
SHUTDOWN_GRACE = 0.5


async def _not_found(req: web.Request) -> web.StreamResponse:
    if req.path == "/":
        return web.Response(
            text="Consul Agent: UI disabled. To enable, set ui_config.enabled=true "
            "in the agent configuration and restart."
        )
    if "/v1/" in req.path:
        return text_error(404, "Invalid URL path: not a recognized HTTP API endpoint\n")
    return text_error(
        404,
        f"Invalid URL path: if attempting to use the HTTP API, ensure the path starts with "
        f"'/v1/': {req.path}\n",
    )


@web.middleware
async def _request_log(req: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Consul's `Request finished` debug line for every request (what `monitor -log-level
    debug` shows)."""
    if not log_enabled(logging.DEBUG):
        return await handler(req)
    start = time.monotonic()
    try:
        return await handler(req)
    finally:
        log.debug(
            "Request finished",
            method=req.method,
            url=req.path_qs,
            **{"from": req.remote or ""},
            latency=f"{(time.monotonic() - start) * 1e6:.0f}us",
        )


_HTTP_LABELS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}


def _http_labels(method: str, route: str) -> tuple[tuple[str, str], ...]:
    """consul.api.http's labels: the method and the route as Consul registers it, leading
    '/' dropped and '/' -> '_' (`v1_kv_`, `v1_agent_self`); cached, the routes are few."""
    labels = _HTTP_LABELS.get((method, route))
    if labels is None:
        path = route.split("{", 1)[0].lstrip("/").replace("/", "_")
        labels = _HTTP_LABELS[(method, route)] = (("method", method), ("path", path))
    return labels


@web.middleware
async def _timing(req: web.Request, handler: web.Handler) -> web.StreamResponse:
    """consul.api.http: every request's time in milliseconds, by method and route."""
    start = time.perf_counter()
    try:
        return await handler(req)
    finally:
        resource = req.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        METRICS.sample(
            "api.http", (time.perf_counter() - start) * 1000.0, _http_labels(req.method, route)
        )


def build_app(
    agent: Agent,
    inflight: InFlight | None = None,
    telemetry: TelemetrySettings | None = None,
) -> web.Application:
    limits = agent.config.limits
    max_body = max(limits.kv_max_value_size, limits.txn_max_req_len) + BODY_SLACK
    app = web.Application(
        middlewares=[
            _timing,
            error_middleware,
            _request_log,
            *([inflight.middleware] if inflight is not None else []),
        ],
        client_max_size=max_body,
        handler_args=http_limits.header_limits(agent.config),
    )
    app[AGENT] = agent
    app[metrics.SETTINGS] = telemetry or TelemetrySettings.from_config(agent.config.telemetry)
    http_limits.install(app, lambda: agent.config, max_body)
    policy = agent.config.acl.default_policy

    async def add_headers(_req: web.Request, resp: web.StreamResponse) -> None:
        resp.headers["X-Consul-Default-ACL-Policy"] = policy

    app.on_response_prepare.append(add_headers)
    app.on_response_prepare.append(escape_headers)
    acl.load_persisted_tokens(agent)
    app.add_routes(api_routes())
    app.add_routes(openapi.routes())
    app.add_routes(ui_serve.routes(agent.config))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


def api_routes() -> list[web.RouteDef]:
    """Every /v1 route: the app serves them and the OpenAPI document describes them."""
    modules = (
        acl,
        kv,
        session,
        txn,
        status,
        agent_api,
        catalog,
        health,
        operator,
        snapshot,
        gossip_api,
        connect,
        config_entries,
        discovery_chain,
        monitor,
        coordinate,
        prepared_query,
        internal_ui,
        metrics,
    )
    return [route for module in modules for route in module.routes()]


class _TLSSite(web.TCPSite):
    """A TCPSite whose TLS handshakes time out (`limits.https_handshake_timeout`)."""

    def __init__(self, *args: object, handshake_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class HTTPListeners:
    """The agent's HTTP and HTTPS listeners: one aiohttp runner, a site per address."""

    def __init__(self, agent: Agent, telemetry: TelemetrySettings | None = None) -> None:
        self.agent = agent
        self.telemetry = telemetry
        self.addresses: list[tuple[str, int]] = []
        self.https_addresses: list[tuple[str, int]] = []
        self._runner: web.AppRunner | None = None
        self._inflight = InFlight()

    async def start(
        self,
        listeners: list[tuple[str, int]],
        https: Sequence[tuple[str, int]] = (),
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 5.0,
    ) -> list[tuple[str, int]]:
        """Bind every (host, port) (port 0: the OS picks), plain HTTP on `listeners` and
        HTTPS with `ssl_context` on `https`; return the plain addresses bound."""
        if not listeners and not https:
            return []
        if https and ssl_context is None:
            raise ValueError("HTTPS listeners need an SSL context")
        self._runner = web.AppRunner(
            build_app(self.agent, self._inflight, self.telemetry),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE,
        )
        await self._runner.setup()
        http_limits.limit_connections(self._runner, lambda: self.agent.config)
        for host, port in listeners:
            site = web.TCPSite(self._runner, host, port, reuse_address=True)
            await site.start()
            self.addresses.extend(_bound(site))
        for host, port in https:
            tls_site = _TLSSite(
                self._runner,
                host,
                port,
                ssl_context=ssl_context,
                reuse_address=True,
                handshake_timeout=handshake_timeout,
            )
            await tls_site.start()
            self.https_addresses.extend(_bound(tls_site))
        return list(self.addresses)

    async def stop(self, *, exiting: bool = False) -> None:
        """Stop listening and close every connection; with `exiting` (the process ends right
        after) parked long requests are not unwound one by one."""
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()  # no new connections while the open ones wind down
            await self._inflight.stop(SHUTDOWN_GRACE, cancel=not exiting)
            if exiting:
                # Every socket is closed; aiohttp's per-connection shutdown would wait on
                # each abandoned handler in turn. Only the application's hooks still run.
                await self._runner.shutdown()
                await self._runner.app.cleanup()
            else:
                await self._runner.cleanup()
            self._runner = None
        self.addresses.clear()
        self.https_addresses.clear()


def _bound(site: web.TCPSite) -> list[tuple[str, int]]:
    server = site._server
    return [
        (sock.getsockname()[0], sock.getsockname()[1])
        for sock in (server.sockets if server else ())  # type: ignore[union-attr]
    ]
