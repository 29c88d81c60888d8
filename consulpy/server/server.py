"""The server role: store + FSM driven by an applier, reads with blocking, leader duties.

Everything above (HTTP handlers, the agent) talks to a server through three calls:
`write(command)`, `read(name, args, options)` and `session_renew(id)`. A client agent will
implement the same three over RPC, which is what keeps the HTTP layer unaware of where the
state lives.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import structlog

from consulpy.server.applier import Applier, InMemoryApplier
from consulpy.server.blocking import wait_for_change
from consulpy.server.leader import LeaderDuties
from consulpy.server.query import CONSISTENT, STALE, QueryMeta, QueryOptions
from consulpy.server.reads import READS, ReadError
from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import service_row
from consulpy.state.watch import WatchSet

log = structlog.get_logger("consulpy.server")


class CommandError(Exception):
    """A command the FSM refused; the text is what Consul reports (HTTP 500)."""


class NoLeaderError(Exception):
    def __str__(self) -> str:
        return "No cluster leader"


class Server:
    def __init__(
        self,
        *,
        node_name: str,
        node_id: str,
        datacenter: str,
        advertise_addr: str,
        server_port: int,
        node_meta: dict[str, str] | None = None,
        tagged_addresses: dict[str, str] | None = None,
        applier: Applier | None = None,
        tombstone_ttl: float | None = None,
    ) -> None:
        self.node_name = node_name
        self.node_id = node_id
        self.datacenter = datacenter
        self.advertise_addr = advertise_addr
        self.server_port = server_port
        self.node_meta = node_meta or {}
        self.tagged_addresses = tagged_addresses
        self.store = StateStore()
        self.fsm = FSM(self.store)
        self.applier: Applier = applier or InMemoryApplier(self.fsm, node_id, self.rpc_address)
        kwargs = {} if tombstone_ttl is None else {"tombstone_ttl": tombstone_ttl}
        self.leader = LeaderDuties(self, **kwargs)
        self.applier.on_leader_change(self._leader_changed)
        self._rng = random.Random()

    @property
    def rpc_address(self) -> str:
        return f"{self.advertise_addr}:{self.server_port}"

    async def start(self) -> None:
        if isinstance(self.applier, InMemoryApplier):
            self.applier.start()

    async def stop(self) -> None:
        self.leader.stop()

    def _leader_changed(self, is_leader: bool) -> None:
        if is_leader:
            self.leader.start()
        else:
            self.leader.stop()

    # ----------------------------------------------------------------- writes
    async def write(self, cmd: dict[str, Any]) -> Any:
        """Apply a command through consensus; raise CommandError for a refused one."""
        if not self.applier.is_leader():
            leader_id, _ = self.applier.leader()
            if leader_id is None:
                raise NoLeaderError()
        _, result = await self.applier.apply(C.encode(cmd))
        if is_error(result):
            raise CommandError(result["Error"])
        kind = cmd["t"]
        if kind == C.SESSION_CREATE:
            self.leader.session_created(result)
        elif kind == C.SESSION_DESTROY:
            self.leader.sessions.cancel(cmd["id"])
        return result

    async def session_renew(self, session_id: str) -> dict[str, Any] | None:
        """Reset a session's TTL timer on the leader (no log entry, as in Consul)."""
        if not self.applier.is_leader():
            raise NoLeaderError()
        session = self.store.sessions.get(session_id)
        if session is None:
            return None
        self.leader.session_renewed(session_id)
        return session.to_wire()

    # ------------------------------------------------------------------ reads
    def _meta(self, index: int, opts: QueryOptions) -> QueryMeta:
        leader_id, _ = self.applier.leader()
        consistency = {STALE: "stale", CONSISTENT: "consistent"}.get(opts.consistency, "leader")
        return QueryMeta(
            index=max(index, 1),
            known_leader=leader_id is not None,
            last_contact_ms=self.applier.last_contact_ms(),
            consistency=consistency,
        )

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]:
        """Run a named read with Consul's consistency and blocking semantics."""
        try:
            return await self._read(READS[name], args, opts)
        except ReadError as exc:
            raise CommandError(str(exc)) from exc

    async def _read(
        self, fn: Any, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]:
        store = self.store
        if (
            opts.consistency != STALE
            and not self.applier.is_leader()
            and self.applier.leader()[0] is None
        ):
            raise NoLeaderError()
        if opts.consistency == CONSISTENT:
            await self.applier.barrier()
        if opts.index <= 0:
            index, result = fn(store, args, None)
            return self._meta(index, opts), result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.blocking_timeout(self._rng.random())
        while True:
            ws = WatchSet()
            index, result = fn(store, args, ws)
            remaining = deadline - loop.time()
            if index > opts.index or remaining <= 0:
                return self._meta(index, opts), result
            if not await wait_for_change(store.watches, ws, remaining):
                return self._meta(index, opts), result

    # ----------------------------------------------------------------- status
    def leader_address(self) -> str:
        _, address = self.applier.leader()
        return address or ""

    def peers(self) -> list[str]:
        return [self.rpc_address]

    def self_member(self) -> dict[str, Any]:
        """This server as a catalog member (its node, serfHealth and the `consul` service)."""
        return {
            "Name": self.node_name,
            "ID": self.node_id,
            "Address": self.advertise_addr,
            "TaggedAddresses": self.tagged_addresses,
            "Meta": self.node_meta,
            "Service": service_row(
                ID="consul",
                Service="consul",
                Port=self.server_port,
                Meta=None,
            ),
        }
