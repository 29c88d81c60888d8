"""Proxy configuration of mesh gateways, and the gateway lookups sidecars need.

A mesh gateway (service kind `mesh-gateway`) watches, with the same blocking queries as a
sidecar: the CA roots (for the trust domain in every SNI), this datacenter's services and
their connect endpoints (where SNI `<svc>.default.<dc>.internal.<td>` goes), the datacenters
of the WAN pool, and the mesh gateways of every other datacenter (where
`*.<dc>.internal.<td>` goes, to their WAN addresses, asked with `?dc=<dc>`).

`GatewaySet` is also used by sidecars whose upstream targets live in another datacenter: in
`local` mode they dial this datacenter's gateways (LAN address), in `remote` mode the target
datacenter's (WAN address).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.agent.proxycfg import ProxyWatch
from consulpy.connect import config_entries as ce
from consulpy.server.router import TARGET_DC

if TYPE_CHECKING:
    from consulpy.agent.proxysnapshot import Endpoint

log = structlog.get_logger("consulpy.agent.proxycfg")

MESH_GATEWAY = "mesh-gateway"
GATEWAY_FILTER = 'ServiceKind == "mesh-gateway"'
TYPICAL_FILTER = 'ServiceKind == ""'
# The WAN pool's datacenter list has no blocking query (Consul polls it too).
DATACENTERS_POLL_S = 5.0


def gateway_address(entry: dict[str, Any], wan: bool) -> tuple[str, int]:
    """Where a gateway instance is dialled: its `wan` (or `lan`) tagged address, else the
    service address, else the node's (the node's `wan` tagged address for WAN)."""
    svc, node = entry["Service"], entry["Node"]
    tagged = svc.get("TaggedAddresses") or {}
    for key in ("wan", "wan_ipv4") if wan else ("lan", "lan_ipv4"):
        addr = tagged.get(key) or {}
        if addr.get("Address"):
            return str(addr["Address"]), int(addr.get("Port") or svc.get("Port") or 0)
    address = svc.get("Address") or ""
    if not address and wan:
        address = (node.get("TaggedAddresses") or {}).get("wan") or ""
    return address or node["Address"], int(svc.get("Port") or 0)


def endpoints_of(entries: list[dict[str, Any]], wan: bool = False) -> tuple[Endpoint, ...]:
    """Health entries as endpoints: critical instances are kept, marked unhealthy."""
    from consulpy.agent.proxysnapshot import Endpoint

    out = []
    for entry in entries:
        address, port = gateway_address(entry, wan)
        healthy = all(c["Status"] != "critical" for c in entry.get("Checks") or [])
        out.append(Endpoint(address=address, port=port, healthy=healthy))
    out.sort(key=lambda e: (e.address, e.port))
    return tuple(out)


class GatewaySet:
    """The mesh gateways of some datacenters, kept current by blocking queries.

    Per datacenter: the names of its `mesh-gateway` services, then each one's instances with
    their checks. `changed()` is called after every update.
    """

    def __init__(self, watch: ProxyWatch, changed: Callable[[], None]) -> None:
        self.watch = watch
        self.changed = changed
        self.names: dict[str, list[str]] = {}
        self.entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def known(self, dc: str) -> bool:
        return dc in self.names and all((dc, n) in self.entries for n in self.names[dc])

    def endpoints(self, dc: str, wan: bool) -> tuple[Endpoint, ...]:
        rows = [e for name in self.names.get(dc, ()) for e in self.entries.get((dc, name), ())]
        return endpoints_of(rows, wan)

    def ensure(self, dcs: set[str]) -> None:
        """Watch exactly the gateways of `dcs`."""
        loop = asyncio.get_running_loop()
        for dc in dcs:
            if (dc, "") not in self.tasks:
                self.tasks[(dc, "")] = loop.create_task(self._watch_names(dc))
        for key in [k for k in self.tasks if k[0] not in dcs]:
            self.tasks.pop(key).cancel()
            self.names.pop(key[0], None)
            self.entries.pop(key, None)

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def _watch_names(self, dc: str) -> None:
        def store(result: Any) -> None:
            names = sorted(result or {})
            self.names[dc] = names
            loop = asyncio.get_running_loop()
            for name in names:
                if (dc, name) not in self.tasks:
                    self.tasks[(dc, name)] = loop.create_task(self._watch_instances(dc, name))
            for key in [k for k in self.tasks if k[0] == dc and k[1] and k[1] not in names]:
                self.tasks.pop(key).cancel()
                self.entries.pop(key, None)
            self.changed()

        await blocking_in(self.watch, dc, "Catalog.ListServices", {"filter": GATEWAY_FILTER}, store)

    async def _watch_instances(self, dc: str, name: str) -> None:
        def store(result: Any) -> None:
            rows = [r for r in result or [] if r["Service"].get("Kind") == MESH_GATEWAY]
            self.entries[(dc, name)] = rows
            self.changed()

        args = {"service": name, "tags": [], "node_meta": [], "passing": False}
        await blocking_in(self.watch, dc, "Health.ServiceNodes", args, store)


async def blocking_in(
    watch: ProxyWatch, dc: str, name: str, args: dict[str, Any], store: Callable[[Any], None]
) -> None:
    """The watch's blocking query loop against datacenter `dc` (forwarded over the WAN when
    remote): the target datacenter is a context variable, so setting it in this task is
    enough."""
    TARGET_DC.set("" if dc == watch.agent.datacenter else dc)
    await watch._blocking(name, args, store)


class MeshGatewayWatch(ProxyWatch):
    """The watches of one mesh gateway and the snapshots built from them."""

    def __init__(self, manager: Any, proxy_id: str) -> None:
        super().__init__(manager, proxy_id)
        self.services: set[str] | None = None  # their connect entries: state.endpoints
        self.remote_dcs: list[str] | None = None
        self.gateways = GatewaySet(self, self.changed.set)

    def configured_destination(self) -> str:
        return str(self._service_row().get("Service", ""))

    def start(self) -> None:
        self._spawn("roots", self._watch_roots())
        self._spawn("entries", self._watch_entries())
        self._spawn("services", self._watch_services())
        self._spawn("datacenters", self._watch_datacenters())
        self._builder = asyncio.get_running_loop().create_task(self._build_loop())

    async def stop(self) -> None:
        await self.gateways.stop()
        await super().stop()

    async def _watch_services(self) -> None:
        """This datacenter's typical services; each one's connect endpoints."""
        local = self.agent.datacenter

        def store(result: Any) -> None:
            names = set(result or {})
            self.services = names
            for name in names:
                key = f"svc:{name}"
                if key not in self.tasks:
                    self._spawn(key, self._watch_connect(name))
            for key in [k for k in self.tasks if k.startswith("svc:")]:
                if key.removeprefix("svc:") not in names:
                    self.tasks.pop(key).cancel()
                    self.state.endpoints.pop(key.removeprefix("svc:"), None)
            self.changed.set()

        await blocking_in(self, local, "Catalog.ListServices", {"filter": TYPICAL_FILTER}, store)

    async def _watch_connect(self, name: str) -> None:
        def store(result: Any) -> None:
            self.state.endpoints[name] = list(result or [])
            self.changed.set()

        args = {"service": name, "connect": True, "tags": [], "node_meta": [], "passing": False}
        await blocking_in(self, self.agent.datacenter, "Health.ServiceNodes", args, store)

    async def _watch_datacenters(self) -> None:
        while True:
            try:
                dcs = await self.agent.delegate.apply("Catalog.ListDatacenters", _empty())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("listing datacenters failed; retrying", error=str(exc))
                dcs = None
            if dcs is not None:
                remote = sorted(dc for dc in dcs if dc != self.agent.datacenter)
                if remote != self.remote_dcs:
                    self.remote_dcs = remote
                    self.gateways.ensure(set(remote))
                    self.changed.set()
            await asyncio.sleep(DATACENTERS_POLL_S)

    def _build(self) -> Any:
        from consulpy.agent import gatewaysnapshot as gm

        row = self._service_row()
        roots = self.state.roots
        if (
            not row
            or roots is None
            or not roots.get("TrustDomain")
            or self.services is None
            or self.remote_dcs is None
            or self.state.entries is None
        ):
            return None
        if not all(self.gateways.known(dc) for dc in self.remote_dcs):
            return None
        td = roots["TrustDomain"]
        dc = self.agent.datacenter
        lookup = ce.lookup_in(self.state.entries)
        services = []
        for name in sorted(self.services):
            if not self.state.endpoints.get(name):
                continue  # not (yet) in the mesh
            resolver = lookup(ce.SERVICE_RESOLVER, name) or {}
            subsets = resolver.get("Subsets") or {}
            for subset in ["", *sorted(subsets)]:
                target = ce.ChainTarget(
                    id=name,
                    service=name,
                    subset=subset,
                    namespace="default",
                    partition="default",
                    datacenter=dc,
                    subset_def=dict(subsets.get(subset) or {}),
                )
                services.append(
                    gm.GatewayService(
                        name=name,
                        sni=gm.service_sni(name, dc, td, subset),
                        endpoints=self._endpoints(target),
                    )
                )
        remotes = tuple(
            gm.RemoteDatacenter(
                name=remote,
                cluster_name=gm.datacenter_cluster(remote, td),
                endpoints=self.gateways.endpoints(remote, wan=True),
            )
            for remote in self.remote_dcs
        )
        lan = (row.get("TaggedAddresses") or {}).get("lan") or {}
        return gm.MeshGatewaySnapshot(
            proxy_id=self.proxy_id,
            service=row.get("Service", ""),
            datacenter=dc,
            trust_domain=td,
            address=str(lan.get("Address") or row.get("Address") or "0.0.0.0"),
            port=int(lan.get("Port") or row.get("Port") or 0),
            services=tuple(services),
            remotes=remotes,
        )


def _empty() -> Any:
    from consulpy.server.endpoints.request import Empty

    return Empty()
