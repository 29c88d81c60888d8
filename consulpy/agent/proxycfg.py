"""Proxy configuration: for every sidecar registered on this agent, keep an immutable snapshot
of everything its Envoy needs, rebuilt whenever any input changes.

Inputs are blocking queries, the same ones any Consul client would make: CA roots, the leaf
certificate of the proxied service (from the agent's leaf cache), intentions whose destination
is that service, config entries (protocol, router, splitter, resolver), and the healthy
connect endpoints of every upstream target. A snapshot is published only when all of them
have been fetched once, and only when it differs from the last one.

Each upstream's discovery chain is compiled by the one compiler in
`consulpy.connect.config_entries.chain` (the same one that validates writes and answers
`/v1/discovery-chain`); `consulpy.agent.proxycfg_chain` renders it into routes and clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.connect import config_entries as ce
from consulpy.server.query import STALE, QueryOptions

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent

log = structlog.get_logger("consulpy.agent.proxycfg")

WAIT = 300.0


@dataclass
class _State:
    roots: dict[str, Any] | None = None
    leaf: dict[str, Any] | None = None
    intentions: list[dict[str, Any]] | None = None
    entries: list[dict[str, Any]] | None = None
    endpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class ProxyWatch:
    """The watches of one proxy and the snapshots built from them."""

    def __init__(self, manager: ProxyConfig, proxy_id: str) -> None:
        self.manager = manager
        self.agent = manager.agent
        self.proxy_id = proxy_id
        self.state = _State()
        self.changed = asyncio.Event()
        self.snapshot: Any = None
        self.version = 0
        self.destination = self.configured_destination()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._builder: asyncio.Task[None] | None = None
        self._gateways: Any = None  # a GatewaySet once an upstream leaves this datacenter

    # ------------------------------------------------------------ lifecycle
    def configured_destination(self) -> str:
        return str((self._service_row().get("Proxy") or {}).get("DestinationServiceName", ""))

    def start(self) -> None:
        destination = self.destination
        self._spawn("roots", self._watch_roots())
        self._spawn("leaf", self._watch_leaf(destination))
        self._spawn("intentions", self._watch_intentions(destination))
        self._spawn("entries", self._watch_entries())
        self._builder = asyncio.get_running_loop().create_task(self._build_loop())

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        if self._builder is not None:
            tasks.append(self._builder)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self.tasks.clear()
        if self._gateways is not None:
            await self._gateways.stop()

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        self.tasks[name] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]

    def _service_row(self) -> dict[str, Any]:
        svc = self.agent.local.services.get(self.proxy_id)
        return svc.row if svc is not None else {}

    def _token(self) -> str | None:
        """The proxy's watches and its leaf act with the token the proxy was registered with,
        as Consul's proxycfg does (None: the agent's own token)."""
        svc = self.agent.local.services.get(self.proxy_id)
        return (svc.token or None) if svc is not None else None

    # -------------------------------------------------------------- watches
    async def _blocking(
        self, name: str, args: dict[str, Any], store: Callable[[Any], None]
    ) -> None:
        index = 0
        while True:
            try:
                meta, result = await self.agent.delegate.read(
                    name,
                    args,
                    QueryOptions(index=index, wait=WAIT, consistency=STALE),
                    token=self._token(),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("proxycfg watch failed; retrying", watch=name, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if meta.index < index:
                index = 0  # the index went backwards (a snapshot restore): start over
            if index == 0 or meta.index > index:
                store(result)
                self.changed.set()
            index = meta.index

    async def _watch_roots(self) -> None:
        await self._blocking("ConnectCA.Roots", {}, lambda r: setattr(self.state, "roots", r))

    async def _watch_intentions(self, destination: str) -> None:
        def store(result: Any) -> None:
            self.state.intentions = list((result or {}).get(destination) or [])

        await self._blocking(
            "Intention.Match", {"by": "destination", "names": [destination]}, store
        )

    async def _watch_entries(self) -> None:
        await self._blocking(
            "ConfigEntry.List",
            {"kind": None},
            lambda r: setattr(self.state, "entries", list(r or [])),
        )

    async def _watch_endpoints(self, key: str) -> None:
        """`key` is a service name, or `<service>?dc=<dc>` for another datacenter's."""
        from consulpy.server.router import TARGET_DC

        service, _, dc = key.partition("?dc=")
        if dc:
            TARGET_DC.set(dc)

        def store(result: Any) -> None:
            self.state.endpoints[key] = list(result or [])

        await self._blocking(
            "Health.ServiceNodes",
            {"service": service, "connect": True, "tags": [], "node_meta": [], "passing": False},
            store,
        )

    async def _watch_leaf(self, service: str) -> None:
        await self._watch_cert(service, lambda cert: setattr(self.state, "leaf", cert))

    async def _watch_cert(
        self, service: str, store: Callable[[Any], None], dns_names: tuple[str, ...] = ()
    ) -> None:
        """A leaf certificate of `service` from the agent's cache, stored on every renewal
        (`dns_names`: extra SANs, as an ingress gateway's TLS listener needs)."""
        index = 0
        while True:
            try:
                cert = await self.agent.leaf_certs.get(
                    service, min_index=index, wait=WAIT, token=self._token(), dns_names=dns_names
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("leaf watch failed; retrying", service=service, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if cert["ModifyIndex"] != index:
                index = cert["ModifyIndex"]
                store(cert)
                self.changed.set()

    def _ensure_endpoint_watches(self, services: set[str]) -> None:
        for service in services:
            key = f"endpoints:{service}"
            if key not in self.tasks:
                self._spawn(key, self._watch_endpoints(service))
        for key in [k for k in self.tasks if k.startswith("endpoints:")]:
            if key.removeprefix("endpoints:") not in services:
                self.tasks.pop(key).cancel()
                self.state.endpoints.pop(key.removeprefix("endpoints:"), None)

    # ------------------------------------------------------------- building
    async def _build_loop(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                snapshot = self._build()
            except Exception:
                log.exception("building the proxy snapshot failed", proxy=self.proxy_id)
                continue
            if snapshot is None:
                continue
            previous = self.snapshot
            if previous is not None and dataclasses.replace(previous, version="") == snapshot:
                continue
            self.version += 1
            snapshot = dataclasses.replace(snapshot, version=str(self.version))
            self.snapshot = snapshot
            self.manager.lookup.publish(snapshot)

    def _build(self) -> Any:
        from consulpy.agent import proxysnapshot as xs

        st = self.state
        row = self._service_row()
        if (
            not row
            or st.roots is None
            or st.leaf is None
            or st.intentions is None
            or st.entries is None
            or not st.roots.get("TrustDomain")
        ):
            return None
        proxy = row.get("Proxy") or {}
        destination = proxy.get("DestinationServiceName", "")
        config = proxy.get("Config") or {}
        agent = self.agent
        trust_domain = st.roots["TrustDomain"]
        dc = agent.datacenter
        lookup = ce.lookup_in(st.entries)
        chains: list[tuple[dict[str, Any], ce.CompiledChain]] = []
        wanted: set[str] = set()
        gateway_dcs: set[str] = set()
        proxy_mode = str((proxy.get("MeshGateway") or {}).get("Mode") or "")
        for upstream in proxy.get("Upstreams") or []:
            if upstream.get("DestinationType", "service") != "service":
                continue
            try:
                chain = compile_upstream(upstream, lookup, dc, trust_domain, proxy_mode)
            except (ce.GraphError, ValueError) as exc:
                log.warning(
                    "upstream discovery chain does not compile; keeping the last snapshot",
                    proxy=self.proxy_id,
                    upstream=upstream.get("DestinationName", ""),
                    error=str(exc),
                )
                return None
            chains.append((upstream, chain))
            for t in chain.targets.values():
                if t.peer:
                    continue
                if t.datacenter == dc:
                    wanted.add(t.service)
                elif t.mesh_gateway_mode in ("local", "remote"):
                    gateway_dcs.add(dc if t.mesh_gateway_mode == "local" else t.datacenter)
                else:  # mode none: dial the other datacenter's instances directly
                    wanted.add(f"{t.service}?dc={t.datacenter}")
        self._ensure_endpoint_watches(wanted)
        if any(service not in st.endpoints for service in wanted):
            return None  # an upstream's endpoints are not known yet
        if gateway_dcs or self._gateways is not None:
            from consulpy.agent.proxycfg_mesh_gateway import GatewaySet

            if self._gateways is None:
                self._gateways = GatewaySet(self, self.changed.set)
            self._gateways.ensure(gateway_dcs)
            if not all(self._gateways.known(g) for g in gateway_dcs):
                return None  # the mesh gateways to dial are not known yet
        upstreams = [self._render(upstream, chain, trust_domain) for upstream, chain in chains]
        roots_pem: list[str] = []
        for root in st.roots.get("Roots") or []:
            roots_pem.append(root["RootCert"])
            roots_pem.extend(root.get("IntermediateCerts") or [])
        return xs.ProxySnapshot(
            proxy_id=self.proxy_id,
            service=destination,
            datacenter=dc,
            trust_domain=trust_domain,
            public_address=config.get("bind_address") or row.get("Address") or "",
            public_port=int(config.get("bind_port") or row.get("Port") or 0),
            local_address=proxy.get("LocalServiceAddress") or "127.0.0.1",
            local_port=int(proxy.get("LocalServicePort") or 0),
            protocol=str(
                config.get("protocol") or self._central_protocol(destination, lookup)
            ).lower(),
            roots_pem=tuple(roots_pem),
            leaf_cert_pem=st.leaf["CertPEM"],
            leaf_key_pem=st.leaf["PrivateKeyPEM"],
            intentions=tuple(st.intentions),
            default_allow=agent.config.acl.intention_default_allow,
            upstreams=tuple(upstreams),
            local_connect_timeout_s=float(config.get("local_connect_timeout_ms") or 5000) / 1000,
            local_request_timeout_s=float(config.get("local_request_timeout_ms") or 0) / 1000,
        )

    def _central_protocol(self, destination: str, lookup: Any) -> str:
        """The service's protocol from service-defaults / proxy-defaults, as Consul merges
        them into a registration; with enable_central_service_config = false Consul does
        not, and a proxy without its own `protocol` is plain TCP."""
        if not self.agent.config.enable_central_service_config:
            return ce.DEFAULT_PROTOCOL
        return ce.effective_protocol(destination, lookup)

    # ------------------------------------------------------- discovery chain
    def _render(self, upstream: dict[str, Any], chain: ce.CompiledChain, td: str) -> Any:
        from consulpy.agent.proxycfg_chain import render_upstream

        endpoints = {tid: self._endpoints(target) for tid, target in chain.targets.items()}
        upstream_id = upstream.get("DestinationName", "") + (
            f"?dc={upstream['Datacenter']}" if upstream.get("Datacenter") else ""
        )
        return render_upstream(
            chain,
            upstream_id=upstream_id,
            local_bind_address=upstream.get("LocalBindAddress") or "127.0.0.1",
            local_bind_port=int(upstream.get("LocalBindPort") or 0),
            trust_domain=td,
            endpoints=endpoints,
        )

    def _endpoints(self, target: ce.ChainTarget) -> tuple[Any, ...]:
        """The target's instances: its service's connect endpoints narrowed by the resolver
        subset (`Filter` over the service entry, `OnlyPassing`)."""
        from consulpy.agent.proxysnapshot import Endpoint
        from consulpy.server.filtering import filter_items

        if target.peer:
            return ()
        key = target.service
        if target.datacenter != self.agent.datacenter:
            mode = target.mesh_gateway_mode
            if mode in ("local", "remote") and self._gateways is not None:
                # through a mesh gateway: ours (LAN address) or the target datacenter's (WAN)
                local = mode == "local"
                gw_dc = self.agent.datacenter if local else target.datacenter
                return self._gateways.endpoints(gw_dc, wan=not local)
            key = f"{target.service}?dc={target.datacenter}"
        entries = list(self.state.endpoints.get(key, ()))
        expr = str(target.subset_def.get("Filter") or "")
        if expr:
            try:
                entries = filter_items(entries, expr, "service_entry")
            except ValueError as exc:
                log.warning("subset filter failed", subset=target.id, error=str(exc))
                entries = []
        only_passing = bool(target.subset_def.get("OnlyPassing"))
        endpoints = []
        for entry in entries:
            svc, node = entry["Service"], entry["Node"]
            statuses = [c["Status"] for c in entry["Checks"]]
            healthy = "critical" not in statuses and not (only_passing and "warning" in statuses)
            weights = svc.get("Weights") or {"Passing": 1, "Warning": 1}
            weight = weights["Warning"] if "warning" in statuses else weights["Passing"]
            endpoints.append(
                Endpoint(
                    address=svc.get("Address") or node["Address"],
                    port=int(svc.get("Port") or 0),
                    healthy=healthy and weight > 0,
                    weight=max(1, min(128, int(weight or 1))),
                )
            )
        endpoints.sort(key=lambda e: (e.address, e.port))
        return tuple(endpoints)


def compile_upstream(
    upstream: dict[str, Any],
    lookup: ce.Lookup,
    dc: str,
    trust_domain: str,
    proxy_mesh_gateway_mode: str = "",
) -> ce.CompiledChain:
    """An upstream's chain, with the upstream's own settings as compile overrides (as
    Consul's proxycfg does): `Config.protocol`, `Config.connect_timeout_ms`, `MeshGateway`
    (the upstream's, else the proxy registration's `Proxy.MeshGateway`)."""
    config = upstream.get("Config") or {}
    try:
        timeout_ms = int(config.get("connect_timeout_ms") or 0)
    except (TypeError, ValueError):
        timeout_ms = 0
    overrides = ce.Overrides(
        protocol=str(config.get("protocol") or "").lower(),
        connect_timeout_ns=timeout_ms * 1_000_000,
        mesh_gateway_mode=str((upstream.get("MeshGateway") or {}).get("Mode") or "")
        or proxy_mesh_gateway_mode,
    )
    return ce.compile_chain(
        upstream.get("DestinationName", ""),
        lookup,
        datacenter=upstream.get("Datacenter") or dc,
        trust_domain=trust_domain,
        overrides=overrides,
    )


class ProxyConfig:
    """Every sidecar registered on this agent, watched from the agent's start to its stop.

    It owns the ``MemoryLookup`` the xDS server reads: each proxy is registered there as soon
    as it is registered locally (so its Envoy may connect early), gets a snapshot once all of
    its inputs are known, and is removed (closing its streams) when it is deregistered.
    """

    def __init__(self, agent: Agent) -> None:
        from consulpy.agent.acl import xds_authorizer
        from consulpy.agent.proxylookup import MemoryLookup

        self.agent = agent
        self.lookup = MemoryLookup(xds_authorizer(agent))
        self.watches: dict[str, ProxyWatch] = {}
        self._running = False
        self._sync_lock = asyncio.Lock()
        self._syncs: set[asyncio.Task[None]] = set()

    def is_proxy(self, proxy_id: str) -> bool:
        from consulpy.agent.proxycfg_gateways import GATEWAY_KINDS

        svc = self.agent.local.services.get(proxy_id)
        kinds = ("connect-proxy", "mesh-gateway", *GATEWAY_KINDS)
        return svc is not None and svc.row.get("Kind") in kinds

    def _watch_for(self, proxy_id: str) -> ProxyWatch:
        from consulpy.agent.proxycfg_gateways import GATEWAY_KINDS, GatewayWatch

        svc = self.agent.local.services.get(proxy_id)
        kind = svc.row.get("Kind") if svc is not None else None
        if kind == "mesh-gateway":
            from consulpy.agent.proxycfg_mesh_gateway import MeshGatewayWatch

            return MeshGatewayWatch(self, proxy_id)
        if kind in GATEWAY_KINDS:
            return GatewayWatch(self, proxy_id)
        return ProxyWatch(self, proxy_id)

    def _local_proxies(self) -> list[str]:
        return [sid for sid in self.agent.local.services if self.is_proxy(sid)]

    async def start(self) -> None:
        self._running = True
        await self.sync()

    def local_changed(self) -> None:
        """Local services changed: proxies rebuild (their upstreams may have changed), and
        proxies are added or removed to match the local registrations."""
        for watch in self.watches.values():
            watch.changed.set()
        if self._running:
            task = asyncio.get_running_loop().create_task(self.sync())
            self._syncs.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._syncs.discard)

    async def sync(self) -> None:
        """Match the watched proxies to the locally registered ones."""
        async with self._sync_lock:
            if not self._running:
                return
            wanted = set(self._local_proxies())
            for proxy_id in list(self.watches):
                watch = self.watches[proxy_id]
                if proxy_id not in wanted or watch.configured_destination() != watch.destination:
                    del self.watches[proxy_id]
                    await watch.stop()
                    if proxy_id not in wanted:
                        self.lookup.deregister(proxy_id)
            for proxy_id in sorted(wanted - set(self.watches)):
                self.lookup.register(proxy_id)
                watch = self.watches[proxy_id] = self._watch_for(proxy_id)
                watch.start()

    async def stop(self) -> None:
        async with self._sync_lock:
            self._running = False
            for proxy_id, watch in list(self.watches.items()):
                await watch.stop()
                self.lookup.deregister(proxy_id)
            self.watches.clear()
