"""Every catalog read the DNS interface makes, in one place.

They go through the agent's delegate, the same named reads HTTP uses, so they work on a
client agent (forwarded to a server) exactly as on a server. Consistency follows
`dns_config`: `allow_stale` reads are served by any server unless its last contact with the
leader is older than `max_stale`.

`CatalogWatch` keeps a generation number that moves whenever the catalog's nodes, services or
checks change (two long-running blocking reads); the answer cache keys on it, and so do the two
whole-catalog indexes here (addresses for PTR, the node list), built at most once per
generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from consulpy.dns.settings import DNSSettings
from consulpy.server.query import DEFAULT, STALE, QueryOptions
from consulpy.server.router import target_dc

log = structlog.get_logger("consulpy.dns")

Row = dict[str, Any]

# A node-meta pair no node carries: ListServices then answers `{}` cheaply while still
# watching the nodes and services tables.
_NO_NODE = [["\x00consulpy-dns-watch", "\x00"]]


class Reader(Protocol):
    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions, token: str | None = None
    ) -> tuple[Any, Any]:
        """A named read: (QueryMeta, result)."""
        ...


class Lookups:
    def __init__(self, delegate: Reader, settings: DNSSettings) -> None:
        self.delegate = delegate
        self.settings = settings
        # The catalog generation (CatalogWatch), for the whole-catalog indexes below.
        self.generation: Callable[[], int | None] = lambda: None
        self._indexes: dict[str, tuple[int, Any]] = {}
        # The token DNS reads carry (acl.tokens.dns, else default; None: the agent's own when
        # ACLs are off), read on every query so PUT /v1/agent/token/dns applies at once.
        self.token: Callable[[], str | None] = lambda: None

    def _opts(self, index: int = 0, wait: float = 0.0) -> QueryOptions:
        s = self.settings
        if s.allow_stale:
            return QueryOptions(index=index, wait=wait, consistency=STALE, max_stale=s.max_stale)
        return QueryOptions(index=index, wait=wait, consistency=DEFAULT)

    async def _read(self, name: str, args: dict[str, Any]) -> Any:
        _, result = await self.delegate.read(name, args, self._opts(), token=self.token())
        return result

    async def service_nodes(
        self, service: str, *, connect: bool = False, ingress: bool = False
    ) -> list[Row]:
        """Health.ServiceNodes rows ({Node, Service, Checks}) of every instance (with
        `ingress`: of every ingress gateway exposing the service)."""
        args = {"service": service, "connect": connect, "ingress": ingress}
        return list(await self._read("Health.ServiceNodes", args) or [])

    async def execute_query(self, name: str, source_ip: str = "") -> Row | None:
        """A prepared query's execute response (PreparedQuery.Execute with this agent as the
        `_agent` source), or None when no query has that name or ID."""
        args = {
            "query": name,
            "agent": self.settings.node_name,
            "source_ip": source_ip,
            "dc": target_dc(self.settings.datacenter),  # `<q>.query.<dc>`: that one
        }
        return await self._read("PreparedQuery.Execute", args)

    async def service_names(self) -> list[str]:
        return list((await self._read("Catalog.ListServices", {})) or {})

    async def node(self, name: str) -> Row | None:
        """{Node, Services} of one node, or None."""
        return await self._read("Catalog.NodeServices", {"node": name, "as_list": True})

    async def nodes(self) -> list[Row]:
        return list(await self._read("Catalog.ListNodes", {}) or [])

    async def service_instances(self, service: str) -> list[Row]:
        """Catalog.ServiceNodes rows (flattened node + service), for reverse lookups."""
        return list(await self._read("Catalog.ServiceNodes", {"service": service}) or [])

    async def _indexed(self, name: str, build: Callable[[], Awaitable[Any]]) -> Any:
        """A whole-catalog index, built at most once per catalog generation."""
        generation = self.generation()
        cached = self._indexes.get(name)
        if generation is not None and cached is not None and cached[0] == generation:
            return cached[1]
        value = await build()
        if generation is not None:
            self._indexes[name] = (generation, value)
        return value

    async def nodes_index(self) -> list[Row]:
        """Every node (for case-insensitive names and node-ID prefixes)."""
        return await self._indexed("nodes", self.nodes)

    async def address_index(self) -> tuple[dict[str, str], dict[str, str]]:
        """(node address -> node name, service address -> service name), first match kept in
        name order, for reverse lookups. One read per service, yielding between them so a
        large catalog never holds the event loop for long."""

        async def build() -> tuple[dict[str, str], dict[str, str]]:
            nodes: dict[str, str] = {}
            for node in await self.nodes():
                nodes.setdefault(_ip_key(node.get("Address", "")), node["Node"])
            services: dict[str, str] = {}
            for name in sorted(await self.service_names()):
                await asyncio.sleep(0)
                for row in await self.service_instances(name):
                    services.setdefault(_ip_key(row.get("ServiceAddress", "")), name)
            nodes.pop("", None)
            services.pop("", None)
            return nodes, services

        return await self._indexed("addresses", build)

    async def wait_catalog(self, index: int, wait: float) -> int:
        """Block until the nodes or services tables move past `index`; returns the new index."""
        meta, _ = await self.delegate.read(
            "Catalog.ListServices",
            {"node_meta": _NO_NODE},
            self._opts(index, wait),
            token=self.token(),
        )
        return int(meta.index)

    async def wait_checks(self, index: int, wait: float) -> int:
        """Block until any check changes past `index` (critical checks are few to send)."""
        meta, _ = await self.delegate.read(
            "Health.ChecksInState",
            {"state": "critical"},
            self._opts(index, wait),
            token=self.token(),
        )
        return int(meta.index)


def _ip_key(text: str) -> str:
    """The canonical text of an IP address; "" for anything else."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


class CatalogWatch:
    """A generation counter that moves whenever the catalog may have changed.

    `generation` is None while the watches are not confirmed running (no leader yet, an
    error): callers must not trust cached answers then.
    """

    WAIT = 300.0

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self.generation: int | None = None
        self._counter = 0
        self._healthy = {"catalog": False, "checks": False}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._loop("catalog", self.lookups.wait_catalog)),
            asyncio.ensure_future(self._loop("checks", self.lookups.wait_checks)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def _bump(self) -> None:
        self._counter += 1
        self.generation = self._counter if all(self._healthy.values()) else None

    async def _loop(self, name: str, wait: Any) -> None:
        index = 0
        backoff = 0.05
        while True:
            try:
                new_index = await wait(index, self.WAIT if index else 0.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._healthy[name] = False
                self._bump()
                log.debug("dns catalog watch failed", watch=name, error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                index = 0
                continue
            backoff = 0.05
            if new_index != index or not self._healthy[name]:
                self._healthy[name] = True
                self._bump()
            # An index that went backwards (a restored snapshot) restarts from scratch.
            index = new_index if new_index >= index else 0
