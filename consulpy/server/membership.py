"""What a server does with gossip membership.

- Bootstrap (`bootstrap_expect`): once this server sees that many servers of its datacenter
  alive in gossip, all expecting the same number, and none of them already has a Raft
  configuration, it bootstraps Raft with exactly those servers. Every one of them does the
  same with the same set, which is what makes the first configuration entry identical.
- On the leader, reconciliation: every member is registered in the catalog with its
  `serfHealth` check (passing when alive, critical when failed); a member that left or was
  reaped is deregistered; servers also get the `consul` service.
- On the leader, autopilot: servers that join later are added as non-voters and promoted once
  they have caught up and stayed healthy for ServerStabilizationTime; servers that left
  are removed from the configuration; failed servers are removed after the same grace period
  when CleanupDeadServers is on and the remaining voters keep a quorum (MinQuorum). Every
  threshold is read from the replicated autopilot configuration (`Server.autopilot_config()`,
  /v1/operator/autopilot/configuration) on each pass, so a change applies at once.

Gossip itself lives in the agent; this module is handed member records as plain dicts
({"Name", "Addr", "Port", "Tags", "Status"}), so it does not import the gossip library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.metrics import METRICS
from consulpy.rpc.errors import RPCError
from consulpy.server.endpoints.request import Empty
from consulpy.server.operator import caught_up
from consulpy.state import commands as C
from consulpy.state.structs import check_row, service_row
from consulpy.util.aio import wait_event

if TYPE_CHECKING:
    from consulpy.server.autopilot import AutopilotConfig
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.server.membership")

ALIVE, LEAVING, LEFT, FAILED = 1, 2, 3, 4
SERF_CHECK_ID = "serfHealth"
SERF_CHECK_NAME = "Serf Health Status"
SERF_ALIVE_OUTPUT = "Agent alive and reachable"
SERF_FAILED_OUTPUT = "Agent not live or unreachable"
AUTOPILOT_INTERVAL = 1.0

Member = dict[str, Any]


class Membership:
    def __init__(
        self,
        server: Server,
        members: Callable[[], list[Member]],
        *,
        bootstrap_expect: int = 0,
    ) -> None:
        self.server = server
        self.members = members
        self.bootstrap_expect = bootstrap_expect
        self.bootstrapped = False
        self._failed_since: dict[str, float] = {}
        self._healthy_since: dict[str, float] = {}
        self._kept: set[str] = set()  # failed servers kept because cleanup is off
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._kick = asyncio.Event()

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True  # ends the loop even if a cancel is lost (see util.aio)
            self._kick.set()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def member_changed(self) -> None:
        """Called for every gossip member event."""
        self._kick.set()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("membership step failed; will retry", error=str(exc))
            await wait_event(self._kick, AUTOPILOT_INTERVAL)
            self._kick.clear()

    async def step(self) -> None:
        async with self._lock:
            if self.bootstrap_expect and not self.bootstrapped:
                await self.maybe_bootstrap()
            if self.server.applier.is_leader():
                await self.reconcile()
                await self.autopilot()

    # ------------------------------------------------------------- bootstrap
    def _dc_servers(self) -> list[Member]:
        dc = self.server.datacenter
        return [
            m
            for m in self.members()
            if m["Tags"].get("role") == "consul" and m["Tags"].get("dc") == dc
        ]

    @staticmethod
    def _rpc_address(m: Member) -> str:
        return f"{m['Addr']}:{m['Tags'].get('port', '8300')}"

    async def maybe_bootstrap(self) -> None:
        raft = self.server.raft
        if raft is None:
            return
        if raft.node.configuration():
            self.bootstrapped = True
            return
        servers = [m for m in self._dc_servers() if m["Status"] == ALIVE]
        if len(servers) < self.bootstrap_expect:
            return
        expects = {m["Tags"].get("expect") for m in servers}
        if expects != {str(self.bootstrap_expect)}:
            log.error(
                "servers disagree on bootstrap_expect; not bootstrapping",
                expects=sorted(str(e) for e in expects),
            )
            return
        for m in servers:
            if m["Name"] == self.server.node_name:
                continue
            try:
                info = await self.server.call_server(
                    self._rpc_address(m), "Status.Info", Empty(), timeout=5
                )
            except RPCError as exc:
                log.info("cannot ask a server for its peers yet", server=m["Name"], error=str(exc))
                return
            if info.get("peers"):
                log.info(
                    "a server already has peers; joining the existing cluster", server=m["Name"]
                )
                self.bootstrapped = True
                return
        configuration = sorted((m["Tags"]["id"], self._rpc_address(m)) for m in servers)
        if await self.server.raft.bootstrap(configuration):  # type: ignore[union-attr]
            log.info("bootstrapped the cluster", servers=[a for _, a in configuration])
        self.bootstrapped = True

    # ------------------------------------------------------------- reconcile
    async def reconcile(self) -> None:
        """Make the catalog agree with gossip (Consul's leader reconcile loop)."""
        start = time.perf_counter()
        try:
            await self._reconcile()
        finally:
            METRICS.measure_since("leader.reconcile", start)

    async def _reconcile(self) -> None:
        store = self.server.store
        known = set()
        for m in self.members():
            known.add(m["Name"])
            status = m["Status"]
            if status == ALIVE:
                await self._alive(m)
            elif status == FAILED:
                await self._failed(m)
            elif status == LEFT:
                await self._left(m["Name"])
        # Members reaped from gossip (gone for good) leave the catalog too, but only nodes
        # that gossip once knew: a serfHealth check marks a node as gossip-managed.
        for name in list(store.catalog.nodes):
            if name not in known and store.catalog.check(name, SERF_CHECK_ID) is not None:
                await self._left(name)

    async def _alive(self, m: Member) -> None:
        store = self.server.store
        name = m["Name"]
        node = store.catalog.node(name)
        check = store.catalog.check(name, SERF_CHECK_ID)
        is_server = m["Tags"].get("role") == "consul"
        service = None
        if is_server:
            service = service_row(
                ID="consul", Service="consul", Port=int(m["Tags"].get("port", "8300"))
            )
        if (
            node is not None
            and node.get("Address") == m["Addr"]
            and check is not None
            and check["Status"] == "passing"
            and (service is None or store.catalog.service(name, "consul") is not None)
        ):
            return
        request: dict[str, Any] = {
            "ID": m["Tags"].get("id", ""),
            "Node": name,
            "Address": m["Addr"],
            "Datacenter": self.server.datacenter,
            # Keep what the node's own agent registered (Consul does the same).
            "TaggedAddresses": node.get("TaggedAddresses") if node else None,
            "NodeMeta": node.get("Meta") if node else None,
            "Locality": node.get("Locality") if node else None,
            "Checks": [
                check_row(
                    Node=name,
                    CheckID=SERF_CHECK_ID,
                    Name=SERF_CHECK_NAME,
                    Status="passing",
                    Output=SERF_ALIVE_OUTPUT,
                )
            ],
        }
        if name == self.server.node_name:
            request["TaggedAddresses"] = self.server.tagged_addresses
            request["NodeMeta"] = self.server.node_meta
        if service is not None:
            request["Service"] = service
        await self.server.propose(C.register(request, ts=self.server.now()))
        log.info("member registered in catalog", node=name)

    async def _failed(self, m: Member) -> None:
        store = self.server.store
        name = m["Name"]
        check = store.catalog.check(name, SERF_CHECK_ID)
        if check is not None and check["Status"] == "critical":
            return
        node = store.catalog.node(name)
        request = {
            "ID": m["Tags"].get("id", ""),
            "Node": name,
            "Address": m["Addr"],
            "Datacenter": self.server.datacenter,
            "TaggedAddresses": node.get("TaggedAddresses") if node else None,
            "NodeMeta": node.get("Meta") if node else None,
            "Locality": node.get("Locality") if node else None,
            "SkipNodeUpdate": node is not None,
            "Checks": [
                check_row(
                    Node=name,
                    CheckID=SERF_CHECK_ID,
                    Name=SERF_CHECK_NAME,
                    Status="critical",
                    Output=SERF_FAILED_OUTPUT,
                )
            ],
        }
        await self.server.propose(C.register(request, ts=self.server.now()))
        log.info("member failed; serfHealth critical", node=name)

    async def _left(self, name: str) -> None:
        if name == self.server.node_name:
            return
        if self.server.store.catalog.node(name) is None:
            return
        await self.server.propose(C.deregister({"Node": name}, ts=self.server.now()))
        log.info("member left; deregistered", node=name)

    # ------------------------------------------------------------- autopilot
    async def autopilot(self) -> None:
        raft = self.server.raft
        if raft is None:
            return
        node = raft.node
        now = time.monotonic()
        config = {s["id"]: s for s in node.configuration()}
        servers = {m["Tags"].get("id", ""): m for m in self._dc_servers()}
        peer_stats = node.peer_stats()
        leader_index = node.stats()["last_log_index"]
        settings = self.server.autopilot_config()
        for sid, m in servers.items():
            if not sid or sid == self.server.node_id:
                continue
            status = m["Status"]
            if status != FAILED:
                self._kept.discard(sid)
            if status == ALIVE:
                self._failed_since.pop(sid, None)
                if sid not in config:
                    await node.add_nonvoter(sid, self._rpc_address(m))
                    self._healthy_since.pop(sid, None)
                    log.info("autopilot: added server as non-voter", server=m["Name"])
                elif config[sid].get("suffrage") == "nonvoter":
                    await self._maybe_promote(
                        sid, m, peer_stats.get(sid), leader_index, now, settings
                    )
            elif status == LEFT and sid in config:
                await node.remove_server(sid)
                log.info("autopilot: removed a server that left", server=m["Name"])
            elif status == FAILED and sid in config:
                since = self._failed_since.setdefault(sid, now)
                if now - since < settings.server_stabilization_time:
                    continue
                if settings.cleanup_dead_servers:
                    await self._maybe_remove_dead(sid, m, config, settings.min_quorum)
                elif sid not in self._kept:
                    self._kept.add(sid)  # said once per failure
                    log.info(
                        "autopilot: keeping a failed server: CleanupDeadServers is off",
                        server=m["Name"],
                    )

    async def _maybe_promote(
        self,
        sid: str,
        m: Member,
        stats: dict[str, Any] | None,
        leader_index: int,
        now: float,
        settings: AutopilotConfig,
    ) -> None:
        stats = stats or {}
        behind = leader_index - stats.get("match_index", 0)
        node = self.server.raft.node  # type: ignore[union-attr]
        if not caught_up(node, settings, stats.get("last_contact"), behind):
            self._healthy_since.pop(sid, None)
            return
        since = self._healthy_since.setdefault(sid, now)
        if now - since >= settings.server_stabilization_time:
            await self.server.raft.node.promote(sid)  # type: ignore[union-attr]
            self._healthy_since.pop(sid, None)
            log.info("autopilot: promoted server to voter", server=m["Name"])

    async def _maybe_remove_dead(
        self, sid: str, m: Member, config: dict[str, dict[str, Any]], min_quorum: int
    ) -> None:
        voters = [s for s, c in config.items() if c.get("suffrage", "voter") == "voter"]
        failed = {s for s, since in self._failed_since.items() if s in config}
        healthy_after = len([v for v in voters if v not in failed])
        remaining = len(voters) - (1 if sid in voters else 0)
        quorum_after = remaining // 2 + 1
        if remaining < max(min_quorum, 1) or healthy_after < quorum_after:
            log.warning(
                "autopilot: not removing a failed server: quorum would be at risk", server=m["Name"]
            )
            return
        await self.server.raft.node.remove_server(sid)  # type: ignore[union-attr]
        self._failed_since.pop(sid, None)
        log.info("autopilot: removed a failed server", server=m["Name"])
