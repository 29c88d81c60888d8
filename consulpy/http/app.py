"""The aiohttp application (every /v1 route, Consul's 404s, the always-present headers) and
the HTTP listeners that serve it. The composition root (`consulpy.runtime`) builds both."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter

import structlog
from aiohttp import web
from multidict import CIMultiDict

from consulpy.agent.agent import Agent
from consulpy.config.model import UnixSockets
from consulpy.http import (
    acl,
    catalog,
    config_entries,
    connect,
    coordinate,
    discovery_chain,
    fanout,
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
from consulpy.http import unix as unix_listener
from consulpy.http.endpoint import AGENT, text_error
from consulpy.http.errors import defect_response, escape_headers
from consulpy.http.hotpath import HotPath
from consulpy.http.inflight import InFlight
from consulpy.log import enabled as log_enabled
from consulpy.metrics import METRICS
from consulpy.metrics.registry import SAMPLE, Series
from consulpy.metrics.telemetry import TelemetrySettings
from consulpy.ui import serve as ui_serve

# Enough for the largest body any endpoint accepts; endpoints enforce their own limits with
# Consul's error texts before this one could trigger.
BODY_SLACK = 64 * 1024
log = structlog.get_logger("consulpy.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# On stop, short requests in flight get this long to finish; blocking queries, monitors and
# other long requests are cancelled at once and their connections closed (see inflight.py).
SHUTDOWN_GRACE = 0.5


def listen_backlog() -> int:
    """The accept queue the HTTP listeners ask for: the kernel's cap (net.core.somaxconn), as
    a Go listener does, not aiohttp's 128. Thousands of watchers reconnecting at once (an agent
    restart; `consulpy bench watch` with 10,000) overflowed 128 and had connections reset."""
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as f:
            return max(int(f.read().strip()), 128)
    except (OSError, ValueError):
        return socket.SOMAXCONN


# The app's hot path (http/hotpath.py): the listeners hand it to their connections.
HOT_PATH: web.AppKey[HotPath] = web.AppKey("hot_path", HotPath)


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


def _front(
    handler: Handler,
    inflight: InFlight | None,
    limits: http_limits.RequestLimits,
    route: str,
) -> Handler:
    """What every request goes through around its route's handler, in one plain wrapper
    rather than a stack of middlewares (each costs a coroutine layer per request): the
    `limits`/`http_config` refusals, the in-flight bookkeeping a stop needs, a defect's
    500 with a request ID, the `consul.api.http` timing, and Consul's `Request finished`
    debug line (what `monitor -log-level debug` shows), built only when a destination wants
    debug events. `route` is the path the handler is registered under: the metric's labels
    are made once per method, not per request. The usual request (no body, no rule that
    may refuse it) costs a dict store and delete and one metric record, no other call."""
    series_of: dict[str, Series] = {}
    requests = inflight.requests if inflight is not None else None

    async def serve(req: web.Request) -> web.StreamResponse:
        start = perf_counter()
        try:
            if limits.rules().refuses or "Content-Length" in req.headers:
                refusal = limits.refusal(req)
                if refusal is not None:
                    return refusal
            try:
                if requests is None:
                    return await handler(req)
                key = id(req)
                requests[key] = req
                if inflight.waiting:  # type: ignore[union-attr]
                    inflight.arrived(key, req)  # type: ignore[union-attr]
                try:
                    return await handler(req)
                finally:
                    del requests[key]
                    if inflight.waiting:  # type: ignore[union-attr]
                        inflight.left(key)  # type: ignore[union-attr]
            except (web.HTTPException, ConnectionResetError):
                raise  # aiohttp's own answers (413 ...); a client that went away
            except Exception:
                return defect_response(req)
        finally:
            elapsed = perf_counter() - start
            method = req.method
            series = series_of.get(method)
            if series is None:
                series = series_of[method] = _http_series(method, route)
            series.add(elapsed * 1000.0)
            if log_enabled(logging.DEBUG):
                log.debug(
                    "Request finished",
                    method=method,
                    url=req.path_qs,
                    **{"from": req.remote or ""},
                    latency=f"{elapsed * 1e6:.0f}us",
                )

    serve.__name__ = getattr(handler, "__name__", "handler")
    return serve


def _http_series(method: str, route: str) -> Series:
    """consul.api.http's series of one method and route, labelled with the route as Consul
    registers it, leading '/' dropped and '/' -> '_' (`v1_kv_`, `v1_agent_self`)."""
    path = route.split("{", 1)[0].lstrip("/").replace("/", "_")
    return METRICS.handle(SAMPLE, "api.http", (("method", method), ("path", path)))


def build_app(
    agent: Agent,
    inflight: InFlight | None = None,
    telemetry: TelemetrySettings | None = None,
) -> web.Application:
    limits = agent.config.limits
    max_body = max(limits.kv_max_value_size, limits.txn_max_req_len) + BODY_SLACK
    app = web.Application(
        client_max_size=max_body,
        handler_args=http_limits.header_limits(agent.config),
    )
    app[AGENT] = agent
    app[metrics.SETTINGS] = telemetry or TelemetrySettings.from_config(agent.config.telemetry)
    request_limits = http_limits.RequestLimits(agent, max_body)
    policy = agent.config.acl.default_policy

    def final_headers(headers: CIMultiDict[str]) -> None:
        """The configured and always-present headers, then what HTTP cannot carry escaped:
        every response gets them, through the hook below or in a blocking query's early
        answer."""
        for name, value in request_limits.rules().headers:  # http_config.response_headers
            headers[name] = value
        headers["X-Consul-Default-ACL-Policy"] = policy
        if not "".join(headers.values()).isprintable():  # almost never: see escape_headers
            escape_headers(headers)

    async def add_headers(_req: web.Request, resp: web.StreamResponse) -> None:
        # final_headers, inlined: this hook runs for every response
        headers = resp.headers
        for name, value in request_limits.rules().headers:
            headers[name] = value
        headers["X-Consul-Default-ACL-Policy"] = policy
        if not "".join(headers.values()).isprintable():
            escape_headers(headers)  # type: ignore[arg-type]

    app[HOT_PATH] = HotPath(agent, request_limits, policy, _http_series("GET", "/v1/kv/"))
    app[fanout.FINAL_HEADERS] = final_headers  # a blocking query's early answer applies it too
    app.on_response_prepare.append(add_headers)
    acl.load_persisted_tokens(agent)
    route_defs = [
        *api_routes(),
        *openapi.routes(),
        *ui_serve.routes(agent.config),
        web.route("*", "/{tail:.*}", _not_found),
    ]
    for d in route_defs:
        wrapped = _front(d.handler, inflight, request_limits, d.path)  # type: ignore[arg-type]
        web.RouteDef(d.method, d.path, wrapped, d.kwargs).register(app.router)
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
        self.unix_paths: list[str] = []
        self._runner: web.AppRunner | None = None
        self._inflight = InFlight()

    async def start(
        self,
        listeners: list[tuple[str, int]],
        https: Sequence[tuple[str, int]] = (),
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 5.0,
        unix: Sequence[str] = (),
        https_unix: Sequence[str] = (),
        unix_sockets: UnixSockets | None = None,
    ) -> list[tuple[str, int]]:
        """Bind every (host, port) (port 0: the OS picks), plain HTTP on `listeners` and
        HTTPS with `ssl_context` on `https`, and the unix socket paths `unix` (plain) and
        `https_unix` (TLS) with `unix_sockets`' owner and mode; return the plain TCP
        addresses bound."""
        if not listeners and not https and not unix and not https_unix:
            return []
        if https_unix and ssl_context is None:
            raise ValueError("HTTPS listeners need an SSL context")
        if https and ssl_context is None:
            raise ValueError("HTTPS listeners need an SSL context")
        self._runner = web.AppRunner(
            build_app(self.agent, self._inflight, self.telemetry),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE,
        )
        await self._runner.setup()
        http_limits.limit_connections(
            self._runner, lambda: self.agent.config, self._runner.app[HOT_PATH]
        )
        backlog = listen_backlog()
        for host, port in listeners:
            site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=backlog)
            await site.start()
            self.addresses.extend(_bound(site))
        for host, port in https:
            tls_site = _TLSSite(
                self._runner,
                host,
                port,
                ssl_context=ssl_context,
                reuse_address=True,
                backlog=backlog,
                handshake_timeout=handshake_timeout,
            )
            await tls_site.start()
            self.https_addresses.extend(_bound(tls_site))
        for path, context in [(p, None) for p in unix] + [(p, ssl_context) for p in https_unix]:
            owner = unix_sockets or UnixSockets(None, None, None)
            await unix_listener.start_site(self._runner, path, owner, context, backlog)
            self.unix_paths.append(path)
        return list(self.addresses)

    @property
    def hot_path(self) -> HotPath | None:
        """The hot path of the listeners' app (None before they start)."""
        return self._runner.app[HOT_PATH] if self._runner is not None else None

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
        for path in self.unix_paths:
            unix_listener.remove(path)
        self.unix_paths.clear()


def _bound(site: web.TCPSite) -> list[tuple[str, int]]:
    server = site._server
    return [
        (sock.getsockname()[0], sock.getsockname()[1])
        for sock in (server.sockets if server else ())  # type: ignore[union-attr]
    ]
