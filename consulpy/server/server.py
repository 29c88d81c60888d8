"""The server role: store + FSM driven by consensus, reads with Consul's consistency modes
and blocking semantics, forwarding to the leader, and the leader's duties.

Everything above (HTTP handlers, the agent) talks to a server through `write(command)`,
`read(name, args, options)` and `session_renew(id)`. A follower forwards writes and non-stale
reads to the leader over RPC; a client agent's delegate does the same to any server. That is
what keeps the HTTP layer unaware of where the state lives.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import structlog

from consulpy.rpc.client import RPCClient
from consulpy.rpc.errors import RPCDialError, RPCError, RPCUnavailable
from consulpy.rpc.server import RPCServer
from consulpy.rpc.tls import RPCTLS
from consulpy.server import operator
from consulpy.server.applier import Applier, InMemoryApplier
from consulpy.server.blocking import wait_for_change
from consulpy.server.connect_ca import CAManager, ConnectNotEnabled
from consulpy.server.errors import CommandError, NoLeaderError
from consulpy.server.leader import LeaderDuties
from consulpy.server.query import CONSISTENT, STALE, QueryMeta, QueryOptions
from consulpy.server.raft_applier import NotLeaderError, OutcomeUnknown, RaftApplier
from consulpy.server.reads import READS, ReadError
from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.watch import WatchSet
from consulpy.util.hostport import split_host_port

log = structlog.get_logger("consulpy.server")

MAX_HOPS = 3
# Errors a forwarded call raises again on this side, by kind.
ERROR_KINDS: dict[type[BaseException], str] = {
    CommandError: "command",
    NoLeaderError: "no_leader",
    NotLeaderError: "not_leader",
    OutcomeUnknown: "outcome_unknown",
}


def raise_remote(exc: RPCError) -> None:
    """Turn a remote error back into the exception the remote side raised."""
    if exc.kind == "command":
        raise CommandError(exc.text) from exc
    if exc.kind in ("no_leader", "not_leader"):
        raise NoLeaderError() from exc
    if exc.kind == "outcome_unknown":
        raise CommandError(exc.text) from exc
    raise CommandError(f"rpc error: {exc.text}") from exc


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
        raft: dict[str, Any] | None = None,
        bootstrap: bool = False,
        rpc_hold_timeout: float = 7.0,
        tombstone_ttl: float | None = None,
        tls: RPCTLS | None = None,
        connect: dict[str, Any] | None = None,
        config_entries: list[dict[str, Any]] | None = None,
    ) -> None:
        self.node_name = node_name
        self.node_id = node_id
        self.datacenter = datacenter
        self.advertise_addr = advertise_addr
        self.node_meta = node_meta or {}
        self.tagged_addresses = tagged_addresses
        self.bootstrap_self = bootstrap
        self.rpc_hold_timeout = rpc_hold_timeout
        self.store = StateStore()
        self.fsm = FSM(self.store)
        self.raft: RaftApplier | None = None
        if applier is not None:
            self.applier: Applier = applier
            self.server_port = server_port
        elif raft is not None:
            self.raft = RaftApplier(
                self.fsm,
                node_id=node_id,
                server_ssl=tls.server if tls else None,
                client_ssl=tls.client if tls else None,
                server_hostname=tls.server_hostname if tls else None,
                **raft,
            )
            self.applier = self.raft
            self.server_port = split_host_port(self.raft.address)[1]
        else:
            self.server_port = server_port
            self.applier = InMemoryApplier(self.fsm, node_id, self.rpc_address)
        kwargs = {} if tombstone_ttl is None else {"tombstone_ttl": tombstone_ttl}
        self.leader = LeaderDuties(self, **kwargs)
        connect = connect or {}
        self.ca = CAManager(
            self,
            enabled=bool(connect.get("enabled")),
            provider=connect.get("provider") or "consul",
            config=connect.get("config"),
        )
        self.leader.on_start.append(self.ca.bootstrap)
        self.bootstrap_entries = list(config_entries or [])
        self.leader.on_start.append(self._bootstrap_config_entries)
        self.applier.on_leader_change(self._leader_changed)
        # Gossip status of servers by node ID ("alive", "failed", ...); set by the agent.
        self.serf_status: Any = dict
        self.rpc_client = RPCClient(
            ssl_context=tls.client if tls else None,
            server_hostname=tls.server_hostname if tls else None,
        )
        self.rpc_server = RPCServer(error_kinds=ERROR_KINDS)
        self._register_rpc()
        self._rng = random.Random()

    @property
    def rpc_address(self) -> str:
        return f"{self.advertise_addr}:{self.server_port}"

    async def _bootstrap_config_entries(self) -> None:
        """On leadership: write the configured `config_entries.bootstrap` entries that do
        not exist yet (an entry changed through the API since is left alone)."""
        for entry in self.bootstrap_entries:
            if self.store.connect.entry(entry["Kind"], entry["Name"]) is not None:
                continue
            try:
                await self.write(C.config_entry_set(entry, cas=0))
            except CommandError as exc:
                log.warning(
                    "bootstrap config entry refused",
                    kind=entry["Kind"],
                    name=entry["Name"],
                    error=str(exc),
                )
            else:
                log.info("bootstrap config entry written", kind=entry["Kind"], name=entry["Name"])

    async def start(self) -> None:
        if self.raft is not None:
            self.raft.transport.register_protocol(0x00, self.rpc_server.serve)
            await self.raft.start()
            if self.bootstrap_self and await self.raft.bootstrap(
                [(self.node_id, self.rpc_address)]
            ):
                log.info("bootstrapped a single-server cluster", id=self.node_id)
        elif isinstance(self.applier, InMemoryApplier):
            self.applier.start()

    async def stop(self) -> None:
        self.leader.stop()
        await self.rpc_client.close()
        if self.raft is not None:
            await self.raft.shutdown()

    def _leader_changed(self, is_leader: bool) -> None:
        log.info("leadership changed", leader=is_leader)
        if is_leader:
            self.leader.start()
        else:
            self.leader.stop()

    # ---------------------------------------------------------------- helpers
    async def _wait_for_leader(self, deadline: float) -> str | None:
        """The leader's address once one is known (None: this server leads); raise
        NoLeaderError at the deadline (Consul holds RPCs up to rpc_hold_timeout)."""
        while True:
            if self.applier.is_leader():
                return None
            leader_id, address = self.applier.leader()
            if leader_id is not None and address:
                return address
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoLeaderError()
            await asyncio.sleep(min(0.05, remaining))

    # ----------------------------------------------------------------- writes
    async def write(self, cmd: dict[str, Any], hops: int = 0) -> Any:
        """Apply a command through consensus (here or on the leader); raise CommandError for
        a refused one and NoLeaderError when no leader appears within rpc_hold_timeout."""
        deadline = time.monotonic() + self.rpc_hold_timeout
        while True:
            address = await self._wait_for_leader(deadline)
            if address is None:
                try:
                    _, result = await self.applier.apply(C.encode(cmd))
                except NotLeaderError:
                    continue  # lost leadership before proposing: find the new leader
                except OutcomeUnknown as exc:
                    raise CommandError(str(exc)) from exc
                return self._after_write(cmd, result)
            if hops >= MAX_HOPS:
                raise NoLeaderError()
            try:
                return await self.rpc_client.call(
                    address,
                    "Server.Write",
                    {"cmd": cmd, "hops": hops + 1},
                    timeout=self.rpc_hold_timeout + 30,
                )
            except RPCDialError:
                if time.monotonic() >= deadline:
                    raise NoLeaderError() from None
                await asyncio.sleep(0.05)
            except RPCUnavailable as exc:
                raise CommandError(f"rpc error: {exc}; the write may or may not apply") from exc
            except RPCError as exc:
                if exc.kind in ("no_leader", "not_leader") and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    continue
                raise_remote(exc)

    def _after_write(self, cmd: dict[str, Any], result: Any) -> Any:
        if is_error(result):
            raise CommandError(result["Error"])
        kind = cmd["t"]
        if kind == C.RESTORE and self.applier.is_leader():
            # Sessions (and their TTLs) were replaced wholesale: re-arm from the new state.
            self.leader.stop()
            self.leader.start()
        elif kind == C.SESSION_CREATE:
            self.leader.session_created(result)
        elif kind == C.SESSION_DESTROY:
            self.leader.sessions.cancel(cmd["id"])
        return result

    async def session_renew(self, session_id: str, hops: int = 0) -> dict[str, Any] | None:
        """Reset a session's TTL timer on the leader (no log entry, as in Consul)."""
        deadline = time.monotonic() + self.rpc_hold_timeout
        address = await self._wait_for_leader(deadline)
        if address is None:
            session = self.store.sessions.get(session_id)
            if session is None:
                return None
            self.leader.session_renewed(session_id)
            return session.to_wire()
        if hops >= MAX_HOPS:
            raise NoLeaderError()
        try:
            return await self.rpc_client.call(
                address,
                "Server.SessionRenew",
                {"id": session_id, "hops": hops + 1},
                timeout=self.rpc_hold_timeout + 5,
            )
        except RPCError as exc:
            raise_remote(exc)
            raise

    # ------------------------------------------------------------------ reads
    def _meta(self, index: int, opts: QueryOptions) -> QueryMeta:
        leader_id, _ = self.applier.leader()
        consistency = {STALE: "stale", CONSISTENT: "consistent"}.get(opts.consistency, "leader")
        return QueryMeta(
            index=max(index, 1),
            known_leader=leader_id is not None,
            last_contact_ms=0 if self.applier.is_leader() else self.applier.last_contact_ms(),
            consistency=consistency,
        )

    def _serve_stale_locally(self, opts: QueryOptions) -> bool:
        if opts.consistency != STALE:
            return False
        if opts.max_stale <= 0 or self.applier.is_leader():
            return True
        # Consul: a stale read from a server lagging more than max_stale goes to the leader.
        return self.applier.last_contact_ms() <= opts.max_stale * 1000

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions, hops: int = 0
    ) -> tuple[QueryMeta, Any]:
        """Run a named read with Consul's consistency and blocking semantics."""
        fn = READS[name]
        if not self._serve_stale_locally(opts):
            deadline = time.monotonic() + self.rpc_hold_timeout
            address = await self._wait_for_leader(deadline)
            if address is not None:
                return await self._forward_read(address, name, args, opts, hops)
            if opts.consistency == CONSISTENT or not self._has_lease():
                try:
                    await self.applier.barrier()
                except NotLeaderError:
                    return await self.read(name, args, opts, hops)
        try:
            return await self._read_local(fn, args, opts)
        except ReadError as exc:
            raise CommandError(str(exc)) from exc

    def _has_lease(self) -> bool:
        has_lease = getattr(self.applier, "has_lease", None)
        return True if has_lease is None else bool(has_lease())

    async def _forward_read(
        self, address: str, name: str, args: dict[str, Any], opts: QueryOptions, hops: int
    ) -> tuple[QueryMeta, Any]:
        if hops >= MAX_HOPS:
            raise NoLeaderError()
        timeout = opts.blocking_timeout(1.0) + 30 if opts.index else self.rpc_hold_timeout + 30
        try:
            reply = await self.rpc_client.call(
                address,
                "Server.Read",
                {"name": name, "args": args, "opts": opts.to_wire(), "hops": hops + 1},
                timeout=timeout,
            )
        except RPCUnavailable as exc:
            raise NoLeaderError() from exc
        except RPCError as exc:
            raise_remote(exc)
            raise
        meta = QueryMeta(**reply["meta"])
        return meta, reply["result"]

    async def _read_local(
        self, fn: Any, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]:
        store = self.store
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

    # -------------------------------------------------------------------- RPC
    def _register_rpc(self) -> None:
        async def write(args: dict[str, Any]) -> Any:
            return await self.write(args["cmd"], hops=args.get("hops", 1))

        async def read(args: dict[str, Any]) -> dict[str, Any]:
            opts = QueryOptions.from_wire(args["opts"])
            meta, result = await self.read(
                args["name"], args["args"], opts, hops=args.get("hops", 1)
            )
            return {"meta": meta.to_wire(), "result": result}

        async def renew(args: dict[str, Any]) -> Any:
            return await self.session_renew(args["id"], hops=args.get("hops", 1))

        async def status(_args: Any) -> dict[str, Any]:
            return await self.status()

        operations = {
            "Operator.RaftConfiguration": lambda _a: operator.raft_configuration(self),
            "Operator.RaftRemovePeer": lambda a: operator.remove_peer(
                self, a.get("id", ""), a.get("address", "")
            ),
            "Operator.TransferLeader": lambda a: operator.transfer_leader(self, a.get("id", "")),
            "Operator.AutopilotHealth": lambda _a: operator.autopilot_health(
                self, self.serf_status()
            ),
            "ConnectCA.Sign": lambda a: self._ca_call(self.ca.sign, a["csr"]),
            "ConnectCA.ConfigurationSet": lambda a: self._ca_call(self.ca.set_config, a),
        }

        def leader_only(name: str) -> Any:
            async def handler(args: dict[str, Any]) -> Any:
                return await self.leader_call(
                    name, args.get("args") or {}, hops=args.get("hops", 1)
                )

            return handler

        for name in operations:
            self.rpc_server.register(name, leader_only(name))
        self._operations = operations
        self.rpc_server.register("Server.Write", write)
        self.rpc_server.register("Server.Read", read)
        self.rpc_server.register("Server.SessionRenew", renew)
        self.rpc_server.register("Status.Info", status)

    @staticmethod
    async def _ca_call(fn: Any, *args: Any) -> Any:
        """CA refusals (bad CSR, bad configuration, Connect disabled) are CommandErrors."""
        from consulpy.connect.ca import CAError

        try:
            return await fn(*args)
        except (CAError, ConnectNotEnabled) as exc:
            raise CommandError(str(exc)) from exc

    async def leader_call(self, name: str, args: dict[str, Any], hops: int = 0) -> Any:
        """Run an operator call on the leader (here, or forwarded over RPC)."""
        deadline = time.monotonic() + self.rpc_hold_timeout
        address = await self._wait_for_leader(deadline)
        if address is None:
            result = self._operations[name](args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        if hops >= MAX_HOPS:
            raise NoLeaderError()
        try:
            return await self.rpc_client.call(
                address, name, {"args": args, "hops": hops + 1}, timeout=self.rpc_hold_timeout + 30
            )
        except RPCError as exc:
            raise_remote(exc)
            raise

    # ----------------------------------------------------------------- status
    async def status(self) -> dict[str, Any]:
        """What /v1/status/leader and /peers show (this server's own view, as in Consul),
        and its Raft term (for snapshot metadata)."""
        term = self.raft.node.stats()["term"] if self.raft is not None else 0
        return {"leader": self.leader_address(), "peers": self.peers(), "term": term}

    def leader_address(self) -> str:
        _, address = self.applier.leader()
        return address or ""

    def peers(self) -> list[str]:
        if self.raft is None:
            return [self.rpc_address]
        return [
            s["address"]
            for s in self.raft.node.configuration()
            if s.get("suffrage", "voter") == "voter"
        ]
