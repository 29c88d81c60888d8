"""The server role: store + FSM driven by consensus, reads with Consul's consistency modes
and blocking semantics, forwarding to the leader, and the leader's duties.

Everything above (HTTP handlers, the agent) calls a server's endpoints by name, with a typed
payload: `apply(name, payload, token)` for writes and leader calls, `read(name, args, options,
token)` for reads (`args`: the read's typed payload, or its fields as a map; token None: the
agent's own token, for anti-entropy and other agent-internal calls); consulpy/server/endpoints
holds them. A follower forwards writes and non-stale reads to the leader over RPC by the same
endpoint name; a client agent's delegate sends the same calls to any server. The RPC
dispatcher serves the endpoint registry and nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import structlog

from consulpy.acl.resolver import ACLNotFound, Resolved, Resolver
from consulpy.metrics import METRICS
from consulpy.metrics.registry import COUNTER, SAMPLE, Series
from consulpy.raft import trace
from consulpy.rpc.client import RPCClient
from consulpy.rpc.errors import RPCDialError, RPCError, RPCUnavailable
from consulpy.rpc.ratelimit import RATE_LIMITED
from consulpy.rpc.server import RPCServer
from consulpy.rpc.tls import RPCTLS
from consulpy.server.acl_filter import (
    FILTERED_READS,
    HEADER_READS,
    FilteredRead,
    filter_result,
)
from consulpy.server.acl_lookup import ACL_TABLES, SecondaryLookup, StoreLookup
from consulpy.server.applier import Applier, InMemoryApplier
from consulpy.server.autopilot import AutopilotConfig, seed_if_missing
from consulpy.server.blocking import EARLY_ANSWER, Answer, SharedWaits
from consulpy.server.connect_ca import CAManager
from consulpy.server.coordinates import CoordinateBatcher
from consulpy.server.endpoints import REGISTRY, Endpoint, Kind, Request
from consulpy.server.endpoints.authz import (
    ACLNotFoundError,
    PermissionDenied,
    acl_context,
    authorize,
    current_identity,
    enforcing,
)
from consulpy.server.endpoints.limits import Limits
from consulpy.server.endpoints.request import (
    Empty,
    check_payload,
    decode_payload,
    payload_to_wire,
    plain_fields,
)
from consulpy.server.errors import CommandError, NoLeaderError, RateLimitExceeded, RequestError
from consulpy.server.leader import LeaderDuties
from consulpy.server.query import (
    CONSISTENT,
    CONSUL_QUERY_TIMES,
    DEFAULT,
    STALE,
    QueryMeta,
    QueryOptions,
    QueryTimes,
)
from consulpy.server.raft_applier import NotLeaderError, OutcomeUnknown, RaftApplier
from consulpy.server.reads import ReadError
from consulpy.server.replication import (
    Replicator,
    forward_to_primary,
    primary_answer,
    read_from_primary,
)
from consulpy.server.router import TARGET_DC, DatacenterRouter, target_dc
from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.snapshot_stream import FrozenState
from consulpy.state.store import StateStore
from consulpy.state.watch import WatchSet
from consulpy.util.hostport import split_host_port

log = structlog.get_logger("consulpy.server")

MAX_HOPS = 3
# Endpoints that do not resolve the caller's token (Consul: bootstrap and login need none, a
# stale header must not block them; status is open).
UNAUTHENTICATED = frozenset(
    {
        "ACL.BootstrapTokens",
        "ACL.Login",
        "ACL.ReplicationStatus",
        "Status.Info",
        "Catalog.ListDatacenters",
    }
)
# Errors a forwarded call raises again on this side, by kind.
ERROR_KINDS: dict[type[BaseException], str] = {
    PermissionDenied: "permission_denied",
    ACLNotFoundError: "acl_not_found",
    RequestError: "bad_request",
    CommandError: "command",
    NoLeaderError: "no_leader",
    NotLeaderError: "not_leader",
    OutcomeUnknown: "outcome_unknown",
}

# The options of a request without parameters (`read_at_once` only reads them).
_DEFAULT_OPTIONS = QueryOptions()


# Consul's timers of the write endpoints (consul.kvs.apply, ...), by endpoint name.
_WRITE_METRICS: dict[str, str] = {
    "KVS.Apply": "kvs.apply",
    "Txn.Apply": "txn.apply",
    "Session.Apply": "session.apply",
    "Session.Renew": "session.renew",
    "Catalog.Register": "catalog.register",
    "Catalog.Deregister": "catalog.deregister",
    "Intention.Apply": "intention.apply",
    "ConfigEntry.Apply": "config_entry.apply",
    "ConfigEntry.Delete": "config_entry.delete",
    "PreparedQuery.Apply": "prepared-query.apply",
}
# ... and of the reads that have one (timed where the read is served, as in Consul).
_READ_METRICS: dict[str, str] = {"Txn.Read": "txn.read"}

# X-Consul-Effective-Consistency, by consistency mode (anything else: "leader").
_CONSISTENCY_NAMES = {STALE: "stale", CONSISTENT: "consistent"}

# A payload's fields (name, type) when each is a str, int or bytes (see plain_fields).
PlainFields = tuple[tuple[str, type], ...]

# consul.rpc.server.call's series of one endpoint, indexed by 2 * errored + is_leader.
CallSeries = tuple[Series, ...]


def call_series(ep: Endpoint, rpc_type: str) -> CallSeries:
    """Bound once per endpoint and caller kind, so recording a call neither builds labels
    nor looks the series up. `rpc_type` is "net/rpc" for calls from other agents,
    "internal" for this agent's own."""
    request_type = "read" if ep.kind is Kind.READ else "write"
    return tuple(
        METRICS.handle(
            SAMPLE,
            "rpc.server.call",
            (
                ("method", ep.name),
                ("errored", errored),
                ("request_type", request_type),
                ("rpc_type", rpc_type),
                ("leader", leader),
            ),
        )
        for errored in ("false", "true")
        for leader in ("false", "true")
    )


_WRITE_SERIES: dict[str, Series] = {}


def _write_series(endpoint: str) -> Series | None:
    """The write endpoint's timer (consul.kvs.apply ...), bound once; None if it has none."""
    series = _WRITE_SERIES.get(endpoint)
    if series is None:
        name = _WRITE_METRICS.get(endpoint)
        if name is None:
            return None
        series = _WRITE_SERIES[endpoint] = METRICS.handle(SAMPLE, name)
    return series


def raise_remote(exc: RPCError) -> None:
    """Turn a remote error back into the exception the remote side raised."""
    if exc.kind == "bad_request":
        raise RequestError(exc.text) from exc
    if exc.kind == "permission_denied":
        raise PermissionDenied(exc.text) from exc
    if exc.kind == "acl_not_found":
        raise ACLNotFoundError(exc.text) from exc
    if exc.kind == "command":
        raise CommandError(exc.text) from exc
    if exc.kind in ("no_leader", "not_leader"):
        raise NoLeaderError() from exc
    if exc.kind == "outcome_unknown":
        raise CommandError(exc.text) from exc
    if exc.kind == RATE_LIMITED:
        raise RateLimitExceeded(exc.text) from exc
    raise CommandError(f"rpc error: {exc.text}") from exc


def read_payload(ep: Endpoint, args: Any) -> Any:
    """A read's typed payload from the payload itself or its fields as a map, checked as
    a payload that came over RPC (unknown fields, wrong types)."""
    if isinstance(args, ep.payload):
        return check_payload(ep.payload, args)
    return decode_payload(ep.payload, args)


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
        acl: dict[str, Any] | None = None,
        limits: Limits | None = None,
        agent_token: str = "",
        query_times: QueryTimes = CONSUL_QUERY_TIMES,
        primary_datacenter: str = "",
        replication: dict[str, Any] | None = None,
    ) -> None:
        self.node_name = node_name
        self.node_id = node_id
        self.datacenter = datacenter
        # The datacenter with the authority over CA, config entries and global ACL objects.
        self.primary_datacenter = primary_datacenter or datacenter
        self.advertise_addr = advertise_addr
        self.node_meta = node_meta or {}
        self.tagged_addresses = tagged_addresses
        self.bootstrap_self = bootstrap
        self.rpc_hold_timeout = rpc_hold_timeout
        # limits.rpc_client_timeout for calls forwarded to the leader (0: no limit); blocking
        # queries wait that long on top of their own wait.
        self.rpc_client_timeout = 60.0
        self.query_times = query_times
        self._call_series: dict[str, CallSeries] = {}  # rpc.server.call's, in-process calls
        # The agent's `autopilot` block: seeds the replicated autopilot configuration (the
        # agent sets it); autopilot itself reads autopilot_config().
        self.autopilot_seed = AutopilotConfig()
        self._autopilot_cached: tuple[dict[str, Any], AutopilotConfig] | None = None
        # Enforced on every request, whichever agent received it (see endpoints/limits.py).
        self.limits = limits or Limits()
        # The token of this agent's own calls (acl.tokens.agent, else acl.tokens.default).
        self.agent_token = agent_token
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
        acl = acl or {}
        # ACLs (consulpy/server/endpoints/acl.py; built-ins and reaping in leader.py).
        self.acl_enabled = bool(acl.get("enabled"))
        self.acl_initial_management = str(acl.get("initial_management") or "")
        self.acl_data_dir = str(acl.get("data_dir") or "")
        self.acl_default_policy = str(acl.get("default_policy") or "allow")
        # Per-server resolution (never module-global: tests run several servers in a process).
        self.acl_resolver: Resolver | None = None
        if self.acl_enabled:
            # A secondary asks the primary for a secret it does not know (SecondaryLookup).
            lookup = (
                StoreLookup(self.store) if self.is_primary() else SecondaryLookup(self.store, self)
            )
            self.acl_resolver = Resolver(
                lookup,
                default_policy=self.acl_default_policy,
                down_policy=str(acl.get("down_policy") or "extend-cache"),
                token_ttl=float(acl.get("token_ttl", 30.0)),
                policy_ttl=float(acl.get("policy_ttl", 30.0)),
                role_ttl=float(acl.get("role_ttl", 30.0)),
                clock=lambda: self.clock(),
                datacenter=datacenter,
                enable_key_list_policy=bool(acl.get("enable_key_list_policy")),
            )
        self.bootstrap_entries = list(config_entries or [])
        self.leader.on_start.append(self._bootstrap_config_entries)
        # Coordinate.Update queues here; the leader applies the queue in batches.
        self.coordinates = CoordinateBatcher(self)
        self.leader.on_start.append(self.coordinates.run)
        # The servers' gossip coordinates [(node name, Coord in JSON form)]; set by the agent.
        self.server_coordinates: Callable[[], list[tuple[str, dict[str, Any]]]] = list
        self.leader.on_start.append(self._check_integrity)
        self.integrity_problems: int | None = None  # set once this process first leads
        self.leader.on_start.append(lambda: seed_if_missing(self))
        replication = replication or {}
        self.replication = Replicator(
            self,
            token_replication=bool(replication.get("enable_token_replication")),
            replication_token=replication.get("token"),
        )
        self.leader.on_start.append(self.replication.run)
        self.applier.on_leader_change(self._leader_changed)
        # Whether a leader's read may be answered from its store at once: Raft's lease check
        # alone (it holds only on a leader), else leading and, if the applier has one, the lease.
        self._leads_with_lease: Callable[[], bool] = (
            self.raft.node.has_lease
            if self.raft is not None and self.applier is self.raft
            else lambda: self.applier.is_leader() and self._has_lease()
        )
        # Gossip status of servers by node ID ("alive", "failed", ...); set by the agent.
        self.serf_status: Any = dict
        # Gossip node names of servers by node ID; set by the agent.
        self.serf_names: Any = dict
        self.rpc_client = RPCClient(
            ssl_context=tls.client if tls else None,
            server_hostname=tls.server_hostname if tls else None,
        )
        self.clock = time.time
        self.endpoints = REGISTRY
        # The reads `_read_plain` may answer: no checks of their own, no after-step, no
        # timer of their own, never served from the primary datacenter.
        self._plain_reads: dict[str, tuple[Endpoint, PlainFields | None]] = {
            name: (ep, plain_fields(ep.payload))
            for name, ep in REGISTRY.items()
            if ep.kind is Kind.READ
            and ep.check is None
            and ep.after is None
            and name not in _READ_METRICS
            and name != "ConfigEntry.Get"  # may ask for the primary's copy (read_from_primary)
        }
        self._rpc_query = METRICS.handle(COUNTER, "rpc.query")
        self._consistent_read = METRICS.handle(SAMPLE, "rpc.consistentRead")
        self.rpc_server = RPCServer(error_kinds=ERROR_KINDS)
        self._register_rpc()
        self._rng = random.Random()
        self.shared_waits = SharedWaits()
        self._acl_index = -1
        self._acl_tables: Any = None
        self._acl_resolved: dict[str, Resolved] = {}
        self.blocking_queries = 0  # in flight on this server (consul.rpc.queries_blocking)
        # Servers of the other datacenters (from the WAN pool); set by the agent. None: this
        # server knows no other datacenter.
        self.router: DatacenterRouter | None = None

    def is_primary(self) -> bool:
        return self.primary_datacenter == self.datacenter

    @property
    def rpc_address(self) -> str:
        return f"{self.advertise_addr}:{self.server_port}"

    async def _check_integrity(self) -> None:
        """Once per process, on its first leadership (every committed entry applied): report
        rows that older versions let into the log (see consulpy/state/integrity.py)."""
        if self.integrity_problems is not None:
            return
        from consulpy.server.raft_applier import report_problems

        await self.applier.barrier()
        self.integrity_problems = report_problems(self.store, "log")

    def autopilot_config(self) -> AutopilotConfig:
        """The autopilot configuration in force: the replicated one, or the agent's own
        settings until the leader has seeded the state (as Consul's autopilot delegate)."""
        row = self.store.autopilot.config
        if row is None:
            return self.autopilot_seed
        cached = self._autopilot_cached
        if cached is None or cached[0] is not row:  # a change stores a new row object
            cached = self._autopilot_cached = (row, AutopilotConfig.from_row(row))
        return cached[1]

    async def _bootstrap_config_entries(self) -> None:
        """On leadership: write the configured `config_entries.bootstrap` entries that do
        not exist yet (an entry changed through the API since is left alone). Only in the
        primary datacenter, as Consul: a secondary gets them by replication."""
        if not self.is_primary():
            return
        for entry in self.bootstrap_entries:
            if self.store.connect.entry(entry["Kind"], entry["Name"]) is not None:
                continue
            try:
                await self.propose(C.config_entry_set(entry, cas=0, ts=self.now()))
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

    # ---------------------------------------------------------------- proposals
    def now(self) -> float:
        """The wall clock stamped into commands (`ts`); only the leader proposes, so every
        time rule (lock-delay, check timestamps) follows the leader's clock."""
        return self.clock()

    async def propose(self, cmd: dict[str, Any]) -> Any:
        """Apply a command through consensus on this server, which must lead (endpoints run
        on the leader; leader duties only while leading). Raise CommandError for a refused
        command and NoLeaderError when leadership was lost before proposing."""
        try:
            data = C.encode(cmd)
        except (TypeError, ValueError, OverflowError) as exc:  # UnicodeEncodeError: ValueError
            # The endpoint's validation let through a value the log cannot hold (an int past
            # 64 bits, a lone surrogate): the request's fault, and nothing was proposed.
            log.warning("command not encodable", kind=cmd.get("t"), error=str(exc))
            raise RequestError(f"invalid request: a value cannot be stored ({exc})") from exc
        try:
            _, result = await self.applier.apply(data)
        except NotLeaderError as exc:
            raise NoLeaderError() from exc
        except OutcomeUnknown as exc:
            raise CommandError(str(exc)) from exc
        if is_error(result):
            raise CommandError(result["Error"])
        return result

    # --------------------------------------------------------------- endpoints
    def _endpoint(self, name: str) -> Endpoint:
        ep = self.endpoints.get(name)
        if ep is None:
            raise CommandError(f"rpc: can't find method {name}")
        return ep

    async def apply(self, name: str, payload: Any, token: str | None = None) -> Any:
        """Call a write, leader or local endpoint in-process (a server or dev agent's
        delegate): `payload` is the endpoint's typed payload; token None: the agent's own."""
        if trace.ENABLED:
            trace.begin()
        ep = self._endpoint(name)
        if ep.kind is Kind.READ:
            raise CommandError(f"{name} is a read")
        if not isinstance(payload, ep.payload):
            raise CommandError(f"{name} takes {ep.payload.__name__}, not {type(payload).__name__}")
        # The same field checks as a request that came over RPC (without a copy).
        checked = check_payload(ep.payload, payload)
        request = Request(
            payload=checked, datacenter=target_dc(self.datacenter), token=self._token(token)
        )
        start = time.perf_counter()
        errored = 1
        try:
            result = await self._apply(ep, request, 0)
            errored = 0
            return result
        finally:
            self._record_call(self._internal_series(ep), start, errored)

    def _internal_series(self, ep: Endpoint) -> CallSeries:
        series = self._call_series.get(ep.name)
        if series is None:
            series = self._call_series[ep.name] = call_series(ep, "internal")
        return series

    def _record_call(self, series: CallSeries, start: float, errored: int) -> None:
        """consul.rpc.server.call: one endpoint call served by this server, with Consul's
        labels (method, errored, request_type, rpc_type, leader)."""
        leader = 1 if self.applier.is_leader() else 0
        series[2 * errored + leader].add((time.perf_counter() - start) * 1000.0)

    def _token(self, token: str | None) -> str:
        return self.agent_token if token is None else token

    async def resolve_token(self, token: str, name: str = "") -> Resolved | None:
        """The identity behind `token` (None when ACLs are off). The cache is dropped whenever
        the FSM has applied an ACL change since the last request, so a changed policy or a
        deleted token takes effect on the next request. Unknown/expired -> ACLNotFoundError."""
        resolver = self.acl_resolver
        if resolver is None:
            return None
        if name in UNAUTHENTICATED:
            return None
        store = self.store
        index = store.table_index(*ACL_TABLES)
        if index != self._acl_index or store.acl is not self._acl_tables:
            self._acl_index, self._acl_tables = index, store.acl
            resolver.invalidate()
            self._acl_resolved.clear()
        # Fast path: the same secret since the last ACL change (an expiry is still honoured).
        hit = self._acl_resolved.get(token)
        if hit is not None:
            expires = hit.token.expiration_time if hit.token is not None else None
            if expires is None or expires > self.clock():
                return hit
        start = time.perf_counter()
        try:
            resolved = await resolver.resolve(token)
        except ACLNotFound:
            raise ACLNotFoundError() from None
        finally:
            METRICS.measure_since("acl.ResolveToken", start)
        if len(self._acl_resolved) >= 4096:
            self._acl_resolved.clear()
        self._acl_resolved[token] = resolved
        return resolved

    async def _run_handler(self, ep: Endpoint, request: Request[Any]) -> Any:
        assert ep.handler is not None
        identity = (
            None if self.acl_resolver is None else await self.resolve_token(request.token, ep.name)
        )
        if identity is None and current_identity() is None:
            return await ep.handler(self, request)  # ACLs off: nothing to make current
        with acl_context(identity):
            return await ep.handler(self, request)

    async def _apply(self, ep: Endpoint, request: Request[Any], hops: int) -> Any:
        series = _write_series(ep.name)
        if series is None:
            return await self._apply_routed(ep, request, hops)
        start = time.perf_counter()
        try:
            return await self._apply_routed(ep, request, hops)
        finally:
            series.add((time.perf_counter() - start) * 1000.0)

    async def _apply_routed(self, ep: Endpoint, request: Request[Any], hops: int) -> Any:
        assert ep.handler is not None
        if request.datacenter in ("", self.datacenter) and forward_to_primary(
            self, ep.name, request
        ):
            request = dataclasses.replace(request, datacenter=self.primary_datacenter)
        if request.datacenter not in ("", self.datacenter):
            return await self._forward_dc(ep, request, hops, self.rpc_hold_timeout + 30)
        if ep.kind is Kind.LOCAL:
            return await self._run_handler(ep, request)
        deadline = time.monotonic() + self.rpc_hold_timeout
        while True:
            # The leader (the usual case on the write path) needs no wait.
            leading = self.applier.is_leader()
            address = None if leading else await self._wait_for_leader(deadline)
            if address is None:
                try:
                    return await self._run_handler(ep, request)
                except NoLeaderError:
                    if time.monotonic() >= deadline:
                        raise
                    continue  # lost leadership before proposing: find the new leader
            if hops >= MAX_HOPS:
                raise NoLeaderError()
            try:
                return await self.rpc_client.call(
                    address,
                    ep.name,
                    {"req": request.to_wire(), "hops": hops + 1},
                    timeout=self._rpc_timeout(),
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

    # ------------------------------------------------------------------ reads
    def _meta(self, index: int, opts: QueryOptions, leading: bool | None = None) -> QueryMeta:
        """`leading`: whether this server leads, when the caller has just asked."""
        leader_id, _ = self.applier.leader()
        consistency = _CONSISTENCY_NAMES.get(opts.consistency, "leader")
        if leading is None:
            leading = self.applier.is_leader()
        return QueryMeta(
            index=max(index, 1),
            known_leader=leader_id is not None,
            last_contact_ms=0 if leading else self.applier.last_contact_ms(),
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
        self, name: str, args: Any, opts: QueryOptions, token: str | None = None
    ) -> tuple[QueryMeta, Any]:
        """Call a read endpoint in-process, with Consul's consistency and blocking
        semantics; `args` is its typed payload or the payload's fields as a map."""
        plain = self._plain_check(name, args, opts)
        if plain is not None:
            ep, wire = plain
            if self._leads_with_lease():
                return self._read_plain(ep, wire, time.perf_counter())
            if self.applier.is_leader():  # a leader without its lease (after a stall)
                reply = await self._read_plain_confirmed(ep, wire)
                if reply is not None:
                    return reply
        ep = self._endpoint(name)
        if ep.kind is not Kind.READ:
            raise CommandError(f"{name} is not a read")
        payload = read_payload(ep, args)
        datacenter = target_dc(self.datacenter)
        # The HTTP layer's early answer is for this read alone: taken here, so that no read
        # made on the way (an `after` hook, a nested read) can answer with another result.
        answer = EARLY_ANSWER.get()
        if answer is not None:
            EARLY_ANSWER.set(None)
        start = time.perf_counter()
        errored = 1
        try:
            request = Request(
                payload=payload, datacenter=datacenter, token=self._token(token), options=opts
            )
            reply = await self._read(ep, request, 0, answer)
            errored = 0
            return reply
        finally:
            self._record_call(self._internal_series(ep), start, errored)

    def read_at_once(self, name: str, args: Any) -> tuple[QueryMeta, Any] | None:
        """`read(name, args, QueryOptions())` when the answer needs no wait (a plain read on
        the leader that holds its lease): the same answer and metrics, with no coroutine.
        None otherwise, having done nothing: the caller then awaits `read`. The HTTP layer's
        hot path (http/hotpath.py) answers `GET /v1/kv/<key>` with it."""
        plain = self._plain_check(name, args, _DEFAULT_OPTIONS)
        if plain is None or not self._leads_with_lease():
            return None
        return self._read_plain(plain[0], plain[1], time.perf_counter())

    def _plain_check(
        self, name: str, args: Any, opts: QueryOptions
    ) -> tuple[Endpoint, dict[str, Any]] | None:
        """The endpoint and checked arguments of a read `_read_plain` may answer (see there),
        None for one that takes the full path."""
        plain = self._plain_reads.get(name)
        if (
            plain is None
            or opts.index > 0
            or opts.consistency != DEFAULT
            or type(args) is not plain[0].payload
            or TARGET_DC.get()
            or self.acl_resolver is not None
            or enforcing()
        ):
            return None
        ep, fields = plain
        # The payload's checks (as `read_payload` makes them) and the read's arguments in
        # one pass: exact field types and ASCII text pass at once, the rest is looked at.
        if fields is None:
            return ep, payload_to_wire(check_payload(ep.payload, args))
        wire = {}
        for field, cls in fields:
            value = getattr(args, field)
            if type(value) is not cls or (cls is str and not value.isascii()):
                return ep, payload_to_wire(check_payload(ep.payload, args))
            wire[field] = value
        return ep, wire

    async def _read_plain_confirmed(
        self, ep: Endpoint, args: dict[str, Any]
    ) -> tuple[QueryMeta, Any] | None:
        """`_read_plain` on a leader that does not hold its lease: first a ReadIndex round,
        as `_read` makes (no quorum answer within the lease, as after a stall). None when
        leadership was lost meanwhile: the full path then forwards the read."""
        start = time.perf_counter()
        try:
            await self.applier.barrier()
        except NotLeaderError:
            return None
        except BaseException:
            self._record_call(self._internal_series(ep), start, 1)
            raise
        self._consistent_read.add((time.perf_counter() - start) * 1000.0)
        return self._read_plain(ep, args, start)

    def _read_plain(
        self, ep: Endpoint, args: dict[str, Any], start: float
    ) -> tuple[QueryMeta, Any]:
        """The usual read (`GET /v1/kv/<key>` on the leader) answered at once, without a
        Request, a coroutine or a wait group: a typed payload, default consistency, no
        `?index`, this datacenter, ACLs off, an endpoint without checks or after-steps
        (`_plain_reads`), on a leader that holds its lease (or has just confirmed it leads),
        so that neither the token nor the leader's address plays a part. Exactly what
        `_read` does for such a read, with the same metrics (`rpc.query`, `rpc.server.call`
        timed from `start`); `args`: the checked payload's fields."""
        series = self._call_series.get(ep.name) or self._internal_series(ep)
        try:
            self._rpc_query.add()
            try:
                index, result = ep.read(self.store, args, None)  # type: ignore[misc]
            except ReadError as exc:
                raise CommandError(str(exc)) from exc
            except (KeyError, TypeError, AttributeError) as exc:
                raise RequestError(f"malformed arguments for {ep.name}: {exc}") from exc
        except BaseException:
            self._record_call(series, start, 1)
            raise
        # The leader's own answer: it knows the leader (itself), with no contact lag.
        meta = QueryMeta(index if index > 1 else 1, True, 0, "leader")
        series[1].add((time.perf_counter() - start) * 1000.0)  # errored false, leader true
        return meta, result

    async def _read(
        self, ep: Endpoint, request: Request[Any], hops: int, answer: Answer | None = None
    ) -> tuple[QueryMeta, Any]:
        assert ep.read is not None and ep.needs is not None
        opts = request.options
        METRICS.incr("rpc.query")
        to_primary = request.datacenter in ("", self.datacenter) and read_from_primary(
            self, ep.name, request
        )
        if to_primary:
            request = dataclasses.replace(request, datacenter=self.primary_datacenter)
        if request.datacenter not in ("", self.datacenter):
            timeout = (
                (opts.blocking_timeout(1.0, self.query_times) if opts.index else 0)
                + self.rpc_hold_timeout
                + 30
            )
            reply = await self._forward_dc(ep, request, hops, timeout)
            result = primary_answer(ep.name, reply["result"]) if to_primary else reply["result"]
            return QueryMeta(**reply["meta"]), result
        if ep.check is not None:
            ep.check(self.limits, request.payload)
        if not self._serve_stale_locally(opts):
            if not self.applier.is_leader():
                deadline = time.monotonic() + self.rpc_hold_timeout
                address = await self._wait_for_leader(deadline)
                if address is not None:
                    return await self._forward_read(address, ep.name, request, hops)
            if opts.consistency == CONSISTENT or not self._has_lease():
                start = time.perf_counter()
                try:
                    await self.applier.barrier()
                except NotLeaderError:
                    return await self._read(ep, request, hops, answer)
                METRICS.measure_since("rpc.consistentRead", start)
        metric = _READ_METRICS.get(ep.name)
        started = time.perf_counter() if metric is not None else 0.0
        identity = (
            None if self.acl_resolver is None else await self.resolve_token(request.token, ep.name)
        )
        if identity is None and not enforcing():
            # ACLs off (and no authorizer installed): nothing to authorize, filter or make
            # current; a plain read (the usual one) runs right here, without a wait group.
            args = payload_to_wire(request.payload)
            if opts.index <= 0:
                meta, result = self._read_now(ep, ep.read, args, opts)
            else:
                # An `after` hook changes the result once the wait is over: no early answer.
                early = answer if ep.after is None else None
                meta, result = await self._read_blocking(ep, ep.read, args, request, early)
        else:
            with acl_context(identity):
                if enforcing():  # ACLs on, or an authorizer installed (tests record with it)
                    for need in ep.needs(self.store, request.payload):
                        authorize(
                            request.token,
                            need.resource,
                            need.segment,
                            need.access,
                            filtered=need.filtered,
                        )
                read = ep.read
                if identity is not None and ep.name in FILTERED_READS:
                    read = filter_result(ep.name, ep.read, identity)
                args = payload_to_wire(request.payload)
                early = answer if ep.after is None else None
                # still in the context: a filter may refuse (Intention.Get) as this identity
                meta, result = await self._read_blocking(ep, read, args, request, early)
        if ep.after is not None:
            result = await ep.after(self, request, hops, result)
        if metric is not None:
            METRICS.measure_since(metric, started)
        return meta, result

    def _read_now(
        self,
        ep: Endpoint,
        fn: Any,
        args: dict[str, Any],
        opts: QueryOptions,
        leading: bool | None = None,
    ) -> tuple[QueryMeta, Any]:
        """A non-blocking read without ACLs: the store query and its QueryMeta."""
        try:
            index, result = fn(self.store, args, None)
        except ReadError as exc:
            raise CommandError(str(exc)) from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise RequestError(f"malformed arguments for {ep.name}: {exc}") from exc
        return self._meta(index, opts, leading), result

    async def _read_blocking(
        self,
        ep: Endpoint,
        fn: Any,
        args: dict[str, Any],
        request: Request[Any],
        early: Answer | None = None,
    ) -> tuple[QueryMeta, Any]:
        """`_read_local` with the shared-wait key of this request and the read's errors
        mapped to the caller's; `early`: the HTTP layer's early answer for this read."""
        opts = request.options
        # Identical blocking queries share one wait: the key holds what the result depends
        # on (the token above all: an ACL-filtered result is never shared across tokens).
        # A read that does not block shares nothing (its arguments are left out).
        shown = repr(args) if opts.index > 0 else ""
        key = (ep.name, shown, request.token, opts.consistency, opts.index)
        try:
            return await self._read_local(fn, args, opts, key, early)
        except ReadError as exc:
            raise CommandError(str(exc)) from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise RequestError(f"malformed arguments for {ep.name}: {exc}") from exc

    def _has_lease(self) -> bool:
        has_lease = getattr(self.applier, "has_lease", None)
        return True if has_lease is None else bool(has_lease())

    async def _forward_read(
        self, address: str, name: str, request: Request[Any], hops: int
    ) -> tuple[QueryMeta, Any]:
        opts = request.options
        if hops >= MAX_HOPS:
            raise NoLeaderError()
        timeout = self._rpc_timeout(
            opts.blocking_timeout(1.0, self.query_times) if opts.index else 0.0
        )
        try:
            reply = await self.rpc_client.call(
                address, name, {"req": request.to_wire(), "hops": hops + 1}, timeout=timeout
            )
        except RPCUnavailable as exc:
            raise NoLeaderError() from exc
        except RPCError as exc:
            raise_remote(exc)
            raise
        meta = QueryMeta(**reply["meta"])
        return meta, reply["result"]

    async def _read_local(
        self, fn: Any, args: dict[str, Any], opts: QueryOptions, key: Any, answer: Answer | None
    ) -> tuple[QueryMeta, Any]:
        """Run the read; a blocking one waits, sharing the wait (and the result object, with
        its QueryMeta) with every identical query waiting on the same index. `answer` (the
        caller's early answer) gets that outcome from the driver's pass when the index moves."""
        store = self.store
        header = isinstance(fn, FilteredRead) and bool(key[2]) and fn.name in HEADER_READS

        def evaluate(ws: WatchSet | None) -> tuple[int, tuple[QueryMeta, Any]]:
            index, result = fn(store, args, ws)
            meta = self._meta(index, opts)
            if header:
                # Consul: true|false only for a request that carried a token (never anonymous,
                # so an anonymous caller cannot learn that something is hidden).
                meta.results_filtered = fn.removed
            # Only a blocking query's result can be shared: a plain read encodes its own.
            meta.shared = {} if opts.index > 0 else None
            return index, (meta, result)

        if opts.index <= 0:
            return evaluate(None)[1]
        limit = opts.blocking_timeout(self._rng.random(), self.query_times)
        if key not in self.shared_waits:
            # The first of its kind answers at once when the index has already moved.
            index, outcome = evaluate(None)
            if index > opts.index:
                return outcome
        self.blocking_queries += 1
        METRICS.gauge("rpc.queries_blocking", self.blocking_queries)
        try:
            _, outcome = await self.shared_waits.wait(
                key, opts.index, evaluate, store.watches, limit, answer
            )
        finally:
            self.blocking_queries -= 1
            METRICS.gauge("rpc.queries_blocking", self.blocking_queries)
        # None: the wait ended while a write was pending for the driver; read the current state.
        return outcome if outcome is not None else evaluate(None)[1]

    async def _forward_dc(
        self, ep: Endpoint, request: Request[Any], hops: int, timeout: float
    ) -> Any:
        """Send a request for another datacenter to one of its alive servers (nearest
        first), by endpoint name over the RPC port; that server serves it as any request of
        its own datacenter (forwarding to its leader). No known alive server: Consul's
        "No path to datacenter"."""
        dc = request.datacenter
        servers = self.router.servers(dc) if self.router is not None else []
        if not servers or hops >= MAX_HOPS:
            raise CommandError("No path to datacenter")
        args = {"req": request.to_wire(), "hops": hops + 1}
        for address in servers:
            try:
                return await self.rpc_client.call(address, ep.name, args, timeout=timeout)
            except RPCDialError:
                continue  # gossip has not noticed yet: try the next one
            except RPCUnavailable as exc:
                if ep.kind is Kind.READ:
                    continue
                raise CommandError(f"rpc error: {exc}; the write may or may not apply") from exc
            except RPCError as exc:
                raise_remote(exc)
                raise
        raise CommandError("No path to datacenter")

    async def read_in(
        self, datacenter: str, name: str, args: Any, opts: QueryOptions, token: str
    ) -> tuple[QueryMeta, Any]:
        """A read served by `datacenter` (replication's blocking queries on the primary)."""
        ep = self._endpoint(name)
        request = Request(
            payload=read_payload(ep, args), datacenter=datacenter, token=token, options=opts
        )
        return await self._read(ep, request, 0)

    async def apply_in(self, datacenter: str, name: str, payload: Any, token: str) -> Any:
        """A write or leader call served by `datacenter` (the primary signing our CA)."""
        ep = self._endpoint(name)
        request = Request(
            payload=check_payload(ep.payload, payload), datacenter=datacenter, token=token
        )
        return await self._apply(ep, request, 0)

    # -------------------------------------------------------------------- RPC
    def _rpc_timeout(self, blocking: float = 0.0) -> float | None:
        return self.rpc_client_timeout + blocking if self.rpc_client_timeout > 0 else None

    async def call_server(self, address: str, name: str, payload: Any, timeout: float) -> Any:
        """Call endpoint `name` on the server at `address` itself (no forwarding), with this
        agent's token (a leader's own call, e.g. autopilot asking a peer)."""
        request = Request(payload=payload, datacenter=self.datacenter, token=self.agent_token)
        return await self.rpc_client.call(
            address, name, {"req": request.to_wire(), "hops": 0}, timeout=timeout
        )

    def _register_rpc(self) -> None:
        """Serve exactly the registered endpoints over RPC, by name (nothing else: there is
        no way to hand a server a raw FSM command)."""
        for ep in self.endpoints.values():
            self.rpc_server.register(ep.name, self._rpc_handler(ep))

    def _rpc_handler(self, ep: Endpoint) -> Any:
        labels = call_series(ep, "net/rpc")

        async def handler(args: Any) -> Any:
            METRICS.incr("rpc.request")
            start = time.perf_counter()
            try:
                result = await serve(args)
            except Exception:
                METRICS.incr("rpc.request_error")
                self._record_call(labels, start, 1)
                raise
            self._record_call(labels, start, 0)
            return result

        async def serve(args: Any) -> Any:
            if not isinstance(args, dict) or set(args) - {"req", "hops"}:
                raise RequestError(f"malformed {ep.name} call: expected {{req, hops}}")
            hops = args.get("hops", 1)
            if not isinstance(hops, int) or isinstance(hops, bool) or hops < 0:
                raise RequestError(f"malformed {ep.name} call: hops must be a count")
            request = Request.from_wire(args.get("req"), ep.payload)
            if ep.kind is Kind.READ:
                meta, result = await self._read(ep, request, hops)
                if isinstance(result, FrozenState):  # Snapshot.State: its bytes on the wire
                    result = result.to_bytes()
                return {"meta": meta.to_wire(), "result": result}
            return await self._apply(ep, request, hops)

        return handler

    # ----------------------------------------------------------------- status
    async def status(self) -> dict[str, Any]:
        """What /v1/status/leader and /peers show (this server's own view, as in Consul),
        and its Raft term (for snapshot metadata). For another datacenter (`?dc=`): the view
        of one of its servers."""
        if target_dc(self.datacenter) != self.datacenter:
            return await self.apply("Status.Info", Empty())
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
