"""The agent's ADS gRPC server (``envoy.service.discovery.v3.AggregatedDiscoveryService``).

One stream per Envoy. The first request names the proxy (``node.id`` = proxy service ID) and
carries the ACL token in the ``x-consul-token`` metadata; the lookup decides whether that
token may fetch that proxy's config. The stream then follows the proxy's snapshots: each one
is turned into resources once (shared by every stream of the proxy) and the protocol session
(Delta or SotW) says what to push and in which order, holding back what must wait for
Envoy's ACKs.

Everything a stream does happens in its own handler task, fed by one queue (Envoy's
requests, new snapshots, the end of either), so a stream's state has one owner and no locks.

    server = XDSServer(lookup)
    port = await server.start("127.0.0.1", 8502)
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from envoy.service.discovery.v3 import ads_pb2_grpc

from consulpy.agent.proxylookup import AccessError, ProxyLookup
from consulpy.agent.proxysnapshot import ProxySnapshot
from consulpy.metrics import METRICS
from consulpy.xds.delta import ACK, NACK, STALE, UNKNOWN_TYPE, DeltaSession
from consulpy.xds.ratelimit import UpdateLimiter
from consulpy.xds.resources import Resources, build, short
from consulpy.xds.sotw import SotwSession

log = structlog.get_logger("consulpy.xds")

TOKEN_METADATA = "x-consul-token"
# The oldest Envoy that understands every field the builders emit (typed SAN matchers,
# HeaderMatcher.string_match, upstream HttpProtocolOptions). Tested: 1.40.
MIN_ENVOY_VERSION = (1, 22, 0)
REAUTH_INTERVAL_S = 300.0
FIRST_REQUEST_TIMEOUT_S = 30.0

_REQUEST, _SNAPSHOT, _END, _GONE, _FAILED = "request", "snapshot", "end", "gone", "failed"


@dataclass(eq=False)
class StreamStatus:
    """What one open stream is doing (for debugging endpoints, tests and measurements)."""

    proxy_id: str
    protocol: str
    peer: str
    envoy_version: str
    session: DeltaSession | SotwSession
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue, repr=False)
    started: float = field(default_factory=time.monotonic)
    acks: int = 0
    nacks: int = 0
    last_nack: str = ""

    @property
    def snapshot_version(self) -> str:
        resources = self.session.resources
        return resources.version if resources is not None else ""

    @property
    def in_sync(self) -> bool:
        return self.session.in_sync()


_TYPE_LABELS: dict[str, tuple[tuple[str, str], ...]] = {}


def _type_labels(type_url: str) -> tuple[tuple[str, str], ...]:
    labels = _TYPE_LABELS.get(type_url)
    if labels is None:
        labels = _TYPE_LABELS[type_url] = (("type", short(type_url)),)
    return labels


def _envoy_version(node: Any) -> tuple[int, int, int] | None:
    if not node.HasField("user_agent_build_version"):
        return None
    v = node.user_agent_build_version.version
    return (v.major_number, v.minor_number, v.patch)


def _token(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == TOKEN_METADATA:
            return value if isinstance(value, str) else value.decode()
    return ""


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, server: XDSServer) -> None:
        self._server = server

    async def DeltaAggregatedResources(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> None:
        await self._handle("delta", DeltaSession(), request_iterator, context)

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> None:
        await self._handle("sotw", SotwSession(), request_iterator, context)

    async def _handle(
        self,
        protocol: str,
        session: DeltaSession | SotwSession,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
    ) -> None:
        try:
            await self._server._serve(protocol, session, requests, context)
        except asyncio.CancelledError:
            # gRPC cancels the handler when the RPC is over (Envoy hung up, or stop()); the
            # stream has cleaned up after itself, and re-raising only makes gRPC log an error.
            return


class XDSServer:
    """ADS over gRPC for every sidecar of this agent.

    ``lookup`` implements ``consulpy.agent.proxylookup.ProxyLookup``. ``builder`` turns a snapshot
    into resources (``resources.build``; tests swap it to inject invalid resources).
    """

    def __init__(
        self,
        lookup: ProxyLookup,
        *,
        min_envoy_version: tuple[int, int, int] = MIN_ENVOY_VERSION,
        reauth_interval_s: float = REAUTH_INTERVAL_S,
        builder: Callable[[ProxySnapshot], Resources] = build,
        update_limiter: UpdateLimiter | None = None,
    ) -> None:
        self.lookup = lookup
        self.update_limiter = update_limiter
        self.min_envoy_version = min_envoy_version
        self.reauth_interval_s = reauth_interval_s
        self.builder = builder
        self._server: grpc.aio.Server | None = None
        self._port = 0
        self._streams: set[StreamStatus] = set()
        self._built: dict[str, tuple[ProxySnapshot, Resources]] = {}
        self._progress = asyncio.Condition()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: grpc.ServerCredentials | None = None,
    ) -> int:
        """Listen on ``host:port`` (0 = any free port; TLS with ``credentials``); returns the
        bound port."""
        if self._server is not None:
            raise RuntimeError("xDS server already started")
        server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
        if bound == 0:
            raise OSError(f"xDS server could not bind {address}")
        await server.start()
        self._server, self._port = server, bound
        log.info("xds server listening", address=host, port=bound, tls=credentials is not None)
        return bound

    @property
    def port(self) -> int:
        return self._port

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting streams and close the open ones (Envoy reconnects elsewhere or
        keeps its last config)."""
        server, self._server = self._server, None
        if server is None:
            return
        # End our streams ourselves first, so each RPC finishes with OK instead of being
        # cancelled mid-flight by gRPC.
        for status in list(self._streams):
            status.queue.put_nowait((_END, None))
        if grace:
            async with self._progress:
                try:
                    await asyncio.wait_for(
                        self._progress.wait_for(lambda: not self._streams), grace
                    )
                except TimeoutError:
                    pass
        await server.stop(grace)

    # -- introspection ----------------------------------------------------------------------

    def streams(self, proxy_id: str | None = None) -> list[StreamStatus]:
        return [s for s in self._streams if proxy_id is None or s.proxy_id == proxy_id]

    async def wait_applied(self, proxy_id: str, version: str, timeout: float) -> bool:
        """Wait until a stream of ``proxy_id`` has pushed snapshot ``version`` and Envoy
        ACKed all of it. False on timeout."""

        def applied() -> bool:
            return any(s.snapshot_version == version and s.in_sync for s in self.streams(proxy_id))

        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(applied), timeout)
            except TimeoutError:
                return False
        return True

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    # -- one stream -------------------------------------------------------------------------

    def _resources(self, snapshot: ProxySnapshot) -> Resources:
        cached = self._built.get(snapshot.proxy_id)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        resources = self.builder(snapshot)
        self._built[snapshot.proxy_id] = (snapshot, resources)
        return resources

    async def _admit(self, first: Any, context: grpc.aio.ServicerContext) -> tuple[str, str]:
        """Check the first request: node ID, Envoy version, token. Aborts the RPC if refused."""
        node = first.node
        proxy_id = node.id
        if not proxy_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "node.id is required: it must be the proxy's service ID",
            )
        version = _envoy_version(node)
        shown = ".".join(map(str, version)) if version else ""
        if version is not None and version < self.min_envoy_version:
            wanted = ".".join(map(str, self.min_envoy_version))
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Envoy {shown} is not supported: the oldest supported version is {wanted}",
            )
        await self._authorize(proxy_id, context)
        return proxy_id, shown

    async def _authorize(self, proxy_id: str, context: grpc.aio.ServicerContext) -> None:
        try:
            await self.lookup.authorize(proxy_id, _token(context))
        except AccessError as exc:
            log.warning("xds stream refused", proxy_id=proxy_id, reason=str(exc))
            await context.abort(getattr(grpc.StatusCode, exc.grpc_code), str(exc))

    async def _serve(
        self,
        protocol: str,
        session: DeltaSession | SotwSession,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
    ) -> None:
        try:
            first = await asyncio.wait_for(anext(requests), FIRST_REQUEST_TIMEOUT_S)
        except (StopAsyncIteration, TimeoutError):
            return
        proxy_id, envoy_version = await self._admit(first, context)
        status = StreamStatus(proxy_id, protocol, context.peer(), envoy_version, session)
        queue = status.queue
        queue.put_nowait((_REQUEST, first))
        tasks = [
            asyncio.create_task(self._read(requests, queue)),
            asyncio.create_task(self._follow(proxy_id, queue)),
        ]
        self._streams.add(status)
        log.info(
            "xds stream opened",
            proxy_id=proxy_id,
            protocol=protocol,
            peer=status.peer,
            envoy=envoy_version,
        )
        try:
            await self._run(status, queue, context)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._streams.discard(status)
            if not self.streams(proxy_id):
                self._built.pop(proxy_id, None)
            await self._notify()
            log.info("xds stream closed", proxy_id=proxy_id, protocol=protocol, peer=status.peer)

    async def _run(
        self,
        status: StreamStatus,
        queue: asyncio.Queue[tuple[str, Any]],
        context: grpc.aio.ServicerContext,
    ) -> None:
        session = status.session
        last_auth = time.monotonic()
        while True:
            wait = max(0.0, last_auth + self.reauth_interval_s - time.monotonic())
            try:
                kind, item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                await self._authorize(status.proxy_id, context)
                last_auth = time.monotonic()
                continue
            if kind == _END:
                return
            if kind == _GONE:
                await context.abort(
                    grpc.StatusCode.ABORTED,
                    f'proxy "{status.proxy_id}" was deregistered from this agent',
                )
            if kind == _FAILED:
                code = getattr(grpc.StatusCode, getattr(item, "grpc_code", "INTERNAL"))
                await context.abort(code, f"cannot follow the proxy's configuration: {item}")
            if kind == _REQUEST:
                await self._authorize(status.proxy_id, context)
                last_auth = time.monotonic()
                self._observe(status, session.on_request(item))
            elif kind == _SNAPSHOT:
                session.set_resources(item)
            while (resp := session.next_response()) is not None:
                await context.write(resp)
                METRICS.incr("xds.server.pushes", 1.0, _type_labels(resp.type_url))
                log.debug(
                    "xds sent",
                    proxy_id=status.proxy_id,
                    type=short(resp.type_url),
                    nonce=resp.nonce,
                    resources=len(resp.resources),
                    removed=len(getattr(resp, "removed_resources", ())),
                )
            await self._notify()

    def _observe(self, status: StreamStatus, outcome: Any) -> None:
        fields = {"proxy_id": status.proxy_id, "type": short(outcome.type_url)}
        if outcome.kind == ACK:
            status.acks += 1
            log.debug("xds ack", nonce=outcome.nonce, **fields)
        elif outcome.kind == NACK:
            status.nacks += 1
            status.last_nack = outcome.error
            log.warning(
                "xds nack: Envoy rejected the config and keeps its last accepted version",
                nonce=outcome.nonce,
                error=outcome.error,
                **fields,
            )
        elif outcome.kind == STALE:
            log.debug("xds stale nonce ignored", nonce=outcome.nonce, **fields)
        elif outcome.kind == UNKNOWN_TYPE:
            log.warning(
                "xds request for an unsupported type",
                type_url=outcome.type_url,
                proxy_id=status.proxy_id,
            )

    async def _read(self, requests: AsyncIterator[Any], queue: asyncio.Queue) -> None:
        try:
            async for req in requests:
                queue.put_nowait((_REQUEST, req))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-message: same as end of stream
            log.debug("xds stream read ended", error=str(exc))
        queue.put_nowait((_END, None))

    async def _follow(self, proxy_id: str, queue: asyncio.Queue) -> None:
        try:
            async for snapshot in self.lookup.watch(proxy_id):
                if self.update_limiter is not None:  # xds.update_max_per_second
                    await self.update_limiter.wait()
                try:
                    resources = self._resources(snapshot)
                except Exception as exc:  # a snapshot we cannot express: keep the last one
                    log.error(
                        "xds cannot build resources; keeping the previous config",
                        proxy_id=proxy_id,
                        version=snapshot.version,
                        error=str(exc),
                    )
                    continue
                queue.put_nowait((_SNAPSHOT, resources))
        except asyncio.CancelledError:
            raise
        except AccessError as exc:
            queue.put_nowait((_FAILED, exc))
            return
        except Exception as exc:  # a broken lookup: fail this stream loudly, not silently
            log.exception("xds snapshot watch failed", proxy_id=proxy_id)
            queue.put_nowait((_FAILED, exc))
            return
        queue.put_nowait((_GONE, None))
