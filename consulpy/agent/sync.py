"""Anti-entropy: make the catalog agree with this agent's local state.

- A change to local state triggers a partial sync soon after (coalesced): only entries not yet
  in sync are pushed.
- A full sync runs periodically (`ae_interval`, 60 s with a random stagger, scaled up above
  128 nodes as Consul does) and on start: it reads what the catalog holds for this node,
  re-registers what differs or went missing, and deregisters services and checks the agent
  does not know (except `serfHealth` and the server's `consul` service, which the servers own).
  With EnableTagOverride, tags changed in the catalog are adopted locally instead.
- Output-only check changes are pushed at most once per `check_update_interval`.
- Failures (no leader, server unreachable) are retried with backoff; nothing is lost because
  the local state stays out of sync until a push succeeds.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from consulpy.server.endpoints.catalog import CatalogDeregister, CatalogRegister
from consulpy.server.query import STALE, QueryMeta, QueryOptions
from consulpy.util.aio import wait_event

if TYPE_CHECKING:
    from consulpy.agent.local import LocalState

log = structlog.get_logger("consulpy.agent.sync")

AE_INTERVAL = 60.0
SERVER_OWNED_CHECKS = frozenset({"serfHealth"})
SERVER_OWNED_SERVICES = frozenset({"consul"})
_IGNORED = frozenset({"Node", "CreateIndex", "ModifyIndex"})


def _same(local: dict[str, Any], remote: dict[str, Any]) -> bool:
    keys = (set(local) | set(remote)) - _IGNORED
    return all(local.get(k) == remote.get(k) for k in keys)


def ae_interval(cluster_size: int, base: float = AE_INTERVAL) -> float:
    """Consul scales the full-sync interval above 128 nodes: ceil(log2 N - log2 128) + 1."""
    if cluster_size <= 128:
        return base
    return base * (math.ceil(math.log2(cluster_size) - math.log2(128)) + 1)


class CatalogClient(Protocol):
    """The agent's delegate as anti-entropy uses it: read this node's catalog entry, write it."""

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]: ...

    async def apply(self, name: str, payload: Any, token: str = "") -> Any: ...


class SyncHost(Protocol):
    """What anti-entropy needs of the agent: the node's identity and local state."""

    node_id: str
    node_name: str
    datacenter: str
    advertise_addr: str
    local: LocalState
    delegate: CatalogClient

    def tagged_addresses(self) -> dict[str, str]: ...

    def node_meta(self) -> dict[str, str]: ...

    def locality(self) -> dict[str, str] | None: ...


class AntiEntropy:
    def __init__(
        self,
        agent: SyncHost,
        *,
        interval: float = AE_INTERVAL,
        check_update_interval: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self.agent = agent
        self.interval = interval
        self.check_update_interval = check_update_interval
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._full = True
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_full_sync: float | None = None
        self.syncs = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            # the flag ends the loop even if a cancel is lost inside a wait (see util.aio)
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def trigger(self, full: bool = False) -> None:
        self._full = self._full or full
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.1
        next_full = time.monotonic()
        while not self._stopping:
            now = time.monotonic()
            if now >= next_full:
                self._full = True
            try:
                if self._full:
                    self._full = False
                    await self.full_sync()
                    stagger = self._rng.uniform(0, self.interval / 16)
                    next_full = time.monotonic() + self.interval + stagger
                else:
                    await self.push()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("anti-entropy sync failed; will retry", error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self._wake.set()
                continue
            timeout = max(0.0, min(next_full, self._next_output_flush()) - time.monotonic())
            await wait_event(self._wake, timeout)
            self._wake.clear()

    def _next_output_flush(self) -> float:
        soonest = math.inf
        for check in self.agent.local.checks.values():
            if check.output_dirty_since is not None:
                soonest = min(soonest, check.output_dirty_since + self.check_update_interval)
        return soonest

    # ------------------------------------------------------------------ syncs
    def _node_request(self) -> dict[str, Any]:
        agent = self.agent
        return {
            "ID": agent.node_id,
            "Node": agent.node_name,
            "Address": agent.advertise_addr,
            "Datacenter": agent.datacenter,
            "TaggedAddresses": agent.tagged_addresses(),
            "NodeMeta": agent.node_meta(),
            "Locality": agent.locality(),
            "SkipNodeUpdate": False,
        }

    async def _register(self, request: dict[str, Any]) -> None:
        await self.agent.delegate.apply("Catalog.Register", CatalogRegister(request))

    async def _deregister(self, *, service_id: str = "", check_id: str = "") -> None:
        payload = CatalogDeregister(self.agent.node_name, service_id=service_id, check_id=check_id)
        await self.agent.delegate.apply("Catalog.Deregister", payload)

    async def full_sync(self) -> None:
        """Compare with the catalog, mark what differs, then push."""
        agent = self.agent
        local = agent.local
        opts = QueryOptions(consistency=STALE)
        _, remote = await agent.delegate.read(
            "Catalog.NodeServices", {"node": agent.node_name, "as_list": True}, opts
        )
        _, remote_checks = await agent.delegate.read(
            "Health.NodeChecks", {"node": agent.node_name}, opts
        )
        remote_node = (remote or {}).get("Node")
        remote_services = {s["ID"]: s for s in (remote or {}).get("Services") or []}
        remote_checks_by_id = {c["CheckID"]: c for c in remote_checks or []}
        node_ok = remote_node is not None and _same(
            {
                "ID": agent.node_id,
                "Node": agent.node_name,
                "Address": agent.advertise_addr,
                "Datacenter": agent.datacenter,
                "TaggedAddresses": agent.tagged_addresses(),
                "Meta": agent.node_meta(),
                "Locality": agent.locality(),
            },
            {
                k: remote_node.get(k)
                for k in (
                    "ID",
                    "Node",
                    "Address",
                    "Datacenter",
                    "TaggedAddresses",
                    "Meta",
                    "Locality",
                )
            },
        )
        for sid, svc in local.services.items():
            remote_svc = remote_services.get(sid)
            if remote_svc is not None and svc.row.get("EnableTagOverride"):
                svc.row["Tags"] = list(remote_svc.get("Tags") or [])
            svc.in_sync = remote_svc is not None and _same(_as_catalog_service(svc.row), remote_svc)
        for cid, check in local.checks.items():
            remote_check = remote_checks_by_id.get(cid)
            check.in_sync = remote_check is not None and _same(
                dict(check.row, Output=None), dict(remote_check, Output=None)
            )
            if (
                check.in_sync
                and remote_check is not None
                and remote_check.get("Output") != check.row.get("Output")
                and check.output_dirty_since is None
            ):
                check.output_dirty_since = time.monotonic()
        stale_services = [
            sid
            for sid in remote_services
            if sid not in local.services and sid not in SERVER_OWNED_SERVICES
        ]
        stale_checks = [
            cid
            for cid in remote_checks_by_id
            if cid not in local.checks and cid not in SERVER_OWNED_CHECKS
        ]
        for sid in stale_services:
            await self._deregister(service_id=sid)
        for cid in stale_checks:
            await self._deregister(check_id=cid)
        if not node_ok:
            await self._register(self._node_request())
        await self.push()
        self.last_full_sync = time.monotonic()

    async def push(self, flush_output: bool = False) -> None:
        """Register every local service and check that is not in sync."""
        agent = self.agent
        local = agent.local
        now = time.monotonic()
        for sid in sorted(local.deleted_services):
            await self._deregister(service_id=sid)
            local.deleted_services.discard(sid)
        for cid in sorted(local.deleted_checks):
            await self._deregister(check_id=cid)
            local.deleted_checks.discard(cid)
        for sid, svc in list(local.services.items()):
            checks = local.service_checks(sid)
            due = [c for c in checks if not c.in_sync or self._output_due(c, now, flush_output)]
            if svc.in_sync and not due:
                continue
            request = self._node_request()
            request["Service"] = dict(svc.row)
            request["Checks"] = [dict(c.row) for c in due]
            await self._register(request)
            svc.in_sync = True
            for check in due:
                check.in_sync = True
                check.output_dirty_since = None
            self.syncs += 1
        node_checks = [
            c
            for c in local.checks.values()
            if not c.row.get("ServiceID")
            and (not c.in_sync or self._output_due(c, now, flush_output))
        ]
        if node_checks:
            request = self._node_request()
            request["Checks"] = [dict(c.row) for c in node_checks]
            await self._register(request)
            for check in node_checks:
                check.in_sync = True
                check.output_dirty_since = None
            self.syncs += 1

    def _output_due(self, check: Any, now: float, flush: bool) -> bool:
        since = check.output_dirty_since
        if since is None:
            return False
        return flush or now - since >= self.check_update_interval


def _as_catalog_service(row: dict[str, Any]) -> dict[str, Any]:
    """A local service row as the catalog's NodeService view renders it, for comparison."""
    from consulpy.state.views import node_service_view

    view = node_service_view(dict(row, CreateIndex=0, ModifyIndex=0))
    return view
