"""The agent: what `consulpy agent` runs on every host.

It owns this node's identity (name, ID), its local services and checks, gossip and, on
servers, the server role. HTTP handlers reach the replicated state only through
`agent.delegate` (the server here; an RPC client on client agents), which calls the server
endpoints (apply / read / status). The agent serves nothing itself: `consulpy.runtime` builds
it together with its HTTP and xDS listeners, and tells it the addresses they bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from consulpy.agent import server_metadata
from consulpy.agent.acl import AgentACL
from consulpy.agent.alias import AgentAliasSource
from consulpy.agent.checkmgr import CheckManager
from consulpy.agent.client import ClientDelegate
from consulpy.agent.coordinates import CoordinateSender
from consulpy.agent.definitions import (
    DefinitionError,
    decode_service_definition,
    service_checks,
    service_from_definition,
)
from consulpy.agent.gossip import RECONNECT_TIMEOUT_TAG, AgentGossip
from consulpy.agent.leafcert import LeafCerts
from consulpy.agent.local import LocalState
from consulpy.agent.proxycfg import ProxyConfig
from consulpy.agent.sidecar import expand as expand_sidecar
from consulpy.agent.sidecar import sidecar_id
from consulpy.agent.sync import AntiEntropy
from consulpy.agent.wan import WanGossip
from consulpy.config import ConfigError
from consulpy.gossip.coordinate import Coordinate
from consulpy.rpc import tls as rpc_tls
from consulpy.rpc.ratelimit import TokenBucket
from consulpy.server.autopilot import AutopilotConfig
from consulpy.server.endpoints.limits import Limits
from consulpy.server.membership import Membership
from consulpy.server.query import QueryTimes
from consulpy.server.router import DatacenterRouter
from consulpy.server.server import Server
from consulpy.util.durations import format_duration
from consulpy.version import CONSUL_COMPAT_VERSION, __version__

if TYPE_CHECKING:
    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.agent")

# A leaving server waits this long for the leader to drop it from the Raft configuration.
LEAVE_RAFT_WAIT = 5.0

# Settings a reload cannot change in a running agent (logged when they differ), by the
# attribute that holds them.
RESTART_SETTINGS = (
    "datacenter",
    "node_name",
    "node_id",
    "data_dir",
    "server",
    "bootstrap",
    "bootstrap_expect",
    "ports",
    "addresses",
    "bind_addr",
    "client_addr",
    "client_addrs",
    "advertise_addr",
    "encrypt",
    "log_file",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "log_json",
    "enable_syslog",
    "syslog_facility",
    "event_loop",
    "ui_config",
    "enable_script_checks",
    "enable_local_script_checks",
    "gossip_lan",
    "gossip_wan",
    "autopilot",
    "unix_sockets",
    "auto_reload_config",
)


def restart_needed(old: AgentConfig, new: AgentConfig) -> list[str]:
    """The settings that differ between two configs and only apply on a restart."""
    changed = [
        name for name in RESTART_SETTINGS if getattr(old, name, None) != getattr(new, name, None)
    ]
    old_acl, new_acl = getattr(old, "acl", None), getattr(new, "acl", None)
    for field in ("enabled", "default_policy"):
        if getattr(old_acl, field, None) != getattr(new_acl, field, None):
            changed.append(f"acl.{field}")
    return changed


def keep_restart_settings(old: AgentConfig, new: AgentConfig) -> AgentConfig:
    """`new` with the values `old` runs with for every setting a reload cannot change, so
    the running agent keeps one consistent view of them until it restarts."""
    fields = {
        name: getattr(old, name)
        for name in RESTART_SETTINGS
        if hasattr(old, name) and getattr(old, name) != getattr(new, name, None)
    }
    if getattr(old, "acl", None) is not None and getattr(new, "acl", None) is not None:
        fields["acl"] = dataclasses.replace(
            new.acl, enabled=old.acl.enabled, default_policy=old.acl.default_policy
        )
    return dataclasses.replace(new, **fields) if fields else new


class AgentError(Exception):
    """The agent cannot start with this configuration (message for the user)."""


class MeshPorts(Protocol):
    """What the agent shows of its xDS listeners (/v1/agent/self, the startup banner)."""

    @property
    def plaintext_port(self) -> int: ...

    @property
    def tls_port(self) -> int: ...

    def self_view(self) -> dict[str, Any] | None: ...


class NoMesh:
    """No gRPC port open (until the composition root attaches the real listeners)."""

    plaintext_port = -1
    tls_port = -1

    def self_view(self) -> dict[str, Any] | None:
        return None


def _is_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        reload_config: Callable[[], AgentConfig] | None = None,
        check_min_interval: float | None = None,
    ) -> None:
        self.config = config
        # Blocking query waits (default_query_time, max_query_time); like Consul, a restart
        # applies a change.
        self.query_times = QueryTimes(config.default_query_time, config.max_query_time)
        self.reload_config = reload_config
        self.node_name: str = config.node_name
        self.datacenter: str = config.datacenter
        self.pretty_json: bool = bool(config.dev)
        self.node_id = self._load_node_id()
        self.advertise_addr = self._advertise_addr()
        self.started_at = time.time()
        # Filled by the composition root once its listeners are bound.
        self.http_addresses: list[tuple[str, int]] = []
        self.http_unix_paths: list[str] = []  # HTTP/HTTPS on unix sockets
        self.https_addresses: list[tuple[str, int]] = []
        self.dns_addresses: list[tuple[str, int]] = []
        self.mesh: MeshPorts = NoMesh()
        # Called with the new configuration after a reload (listeners that re-read settings).
        self.reload_hooks: list[Callable[[AgentConfig], None]] = []
        # Set when the agent should exit (after /v1/agent/leave); the CLI waits on it.
        self.shutdown_requested = asyncio.Event()
        self.server: Server | None = None
        self.client: ClientDelegate | None = None
        self._metadata_task: asyncio.Task[None] | None = None
        try:
            self.tls = rpc_tls.build(config.tls, config.datacenter, config.domain)
        except rpc_tls.TLSConfigError as exc:
            raise AgentError(f"TLS configuration: {exc}") from exc
        if config.ports.serf_lan < 0:
            raise AgentError("every agent gossips: ports.serf_lan must not be -1")
        if config.server:
            self.server = self._build_server()
            self.delegate: Any = self.server
        self.gossip = AgentGossip(self)
        # Servers also gossip over the WAN with the servers of every datacenter (unless
        # ports.serf_wan = -1); the router finds other datacenters' servers there.
        self.wan: WanGossip | None = None
        if self.server is not None and config.serf_wan_bind_address() is not None:
            self.wan = WanGossip(self)
            self.server.router = DatacenterRouter(
                self.datacenter, self.wan.members, self.wan.coordinate
            )
        if self.server is not None:
            self.server.autopilot_seed = AutopilotConfig.from_settings(config.autopilot)
            self.membership: Membership | None = Membership(
                self.server,
                self.gossip.member_views,
                bootstrap_expect=config.bootstrap_expect,
            )
            membership = self.membership
            self.server.serf_status = self._server_serf_status
            self.server.serf_names = self._server_serf_names
            self.server.server_coordinates = self._server_coordinates
            batcher = self.server.coordinates
            batcher.update_period = config.coordinate_update_period
            batcher.update_batch_size = config.coordinate_update_batch_size
            batcher.update_max_batches = config.coordinate_update_max_batches
            self.gossip.on_member_event(lambda _event: membership.member_changed())
            self.server.applier.on_leader_change(lambda _leader: membership.member_changed())
        else:
            self.membership = None
            self.client = ClientDelegate(
                self.gossip,
                rpc_hold_timeout=config.performance.rpc_hold_timeout,
                rpc_client_timeout=config.limits.rpc_client_timeout,
                tls=self.tls,
                agent_token=self.agent_token(),
                query_times=self.query_times,
            )
            self.delegate = self.client
        # The resolver of this agent's own endpoints; None when ACLs are off.
        self.acl: AgentACL | None = (
            AgentACL(
                config.acl,
                self.delegate,
                self.node_name,
                self.datacenter,
                acl_index=self._acl_index if self.server is not None else None,
            )
            if config.acl.enabled
            else None
        )
        self.local = LocalState(self.node_name, config.data_dir)
        self.checks = CheckManager(self, min_interval=check_min_interval)
        self.sync = AntiEntropy(self, check_update_interval=config.check_update_interval)
        self.local.on_change(self.sync.trigger)
        self.alias_source = AgentAliasSource(self)
        self.leaf_certs = LeafCerts(self)
        self.proxy_config = ProxyConfig(self)
        self.local.on_change(self.proxy_config.local_changed)
        # disable_coordinates: no coordinates in gossip, none sent to the servers.
        self.coordinates: CoordinateSender | None = (
            None
            if config.disable_coordinates
            else CoordinateSender(
                self,
                interval_min=config.sync_coordinate_interval_min,
                rate_target=config.sync_coordinate_rate_target,
            )
        )

    def _build_server(self) -> Server:
        config = self.config
        bind_host, server_port = config.rpc_bind()
        if server_port < 0:
            raise AgentError("a server needs its server port (ports.server must not be -1)")
        raft_dir = (
            None if config.dev or not config.data_dir else os.path.join(config.data_dir, "raft")
        )
        server = Server(
            node_name=self.node_name,
            node_id=self.node_id,
            datacenter=self.datacenter,
            advertise_addr=self.advertise_addr,
            server_port=server_port,
            node_meta=self.node_meta(),
            tagged_addresses=self.tagged_addresses(),
            raft={
                "bind_host": bind_host,
                "bind_port": server_port,
                "advertise_host": self.advertise_addr,
                "data_dir": raft_dir,
                "raft_multiplier": config.performance.raft_multiplier,
                "snapshot_threshold": config.raft_snapshot_threshold,
                "snapshot_interval": config.raft_snapshot_interval,
                "trailing_logs": config.raft_trailing_logs,
                "log_store": config.raft_logstore.backend,
                "wal_segment_size": config.raft_logstore.segment_size_mb << 20,
                "handshake_timeout": config.limits.rpc_handshake_timeout,
            },
            bootstrap=bool(config.dev or config.bootstrap),
            rpc_hold_timeout=config.performance.rpc_hold_timeout,
            query_times=self.query_times,
            tls=self.tls,
            connect={
                "enabled": config.connect.enabled,
                "provider": config.connect.ca_provider,
                "config": config.connect.ca_config,
            },
            config_entries=config.config_entries_bootstrap,
            acl={
                "enabled": config.acl.enabled,
                "initial_management": config.acl.tokens.get("initial_management", ""),
                "data_dir": config.data_dir,
                "default_policy": config.acl.default_policy,
                "down_policy": config.acl.down_policy,
                "enable_key_list_policy": config.acl.enable_key_list_policy,
                "token_ttl": config.acl.token_ttl,
                "policy_ttl": config.acl.policy_ttl,
                "role_ttl": config.acl.role_ttl,
            },
            limits=Limits(
                kv_max_value_size=config.limits.kv_max_value_size,
                txn_max_ops=config.limits.txn_max_ops,
                session_ttl_min=config.session_ttl_min,
            ),
            agent_token=self.agent_token(),
            primary_datacenter=config.primary_datacenter,
            replication={
                "enable_token_replication": config.acl.enable_token_replication,
                # Read at each round: /v1/agent/token/replication may change it.
                "token": lambda: self.config.acl.tokens.get("replication", ""),
            },
        )
        server.rpc_server.limiter = TokenBucket(config.limits.rpc_rate, config.limits.rpc_max_burst)
        server.rpc_server.max_conns_per_client = config.limits.rpc_max_conns_per_client
        server.rpc_client_timeout = config.limits.rpc_client_timeout
        return server

    def _acl_index(self) -> int:
        assert self.server is not None
        return self.server.store.table_index("acl-tokens", "acl-policies", "acl-roles")

    def agent_token(self) -> str:
        """The token of this agent's own calls: acl.tokens.agent, else acl.tokens.default."""
        tokens = self.config.acl.tokens
        return tokens.get("agent") or tokens.get("default") or ""

    # ----------------------------------------------------------- identity
    def _load_node_id(self) -> str:
        configured = getattr(self.config, "node_id", None)
        if configured:
            return str(configured).lower()
        data_dir = self.config.data_dir
        if not data_dir:
            return str(uuid.uuid4())
        path = os.path.join(data_dir, "node-id")
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
            uuid.UUID(value)
            return value
        except FileNotFoundError:
            pass
        except ValueError as exc:
            raise AgentError(f"node ID in {path} is not a valid UUID: {exc}") from exc
        value = str(uuid.uuid4())
        os.makedirs(data_dir, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return value

    def _advertise_addr(self) -> str:
        try:
            return self.config.effective_advertise()
        except ConfigError as exc:
            raise AgentError(str(exc)) from exc

    def _server_port(self) -> int:
        return self.server.server_port if self.server is not None else self.config.ports.server

    def locality(self) -> dict[str, str] | None:
        """The agent's `locality` (Consul 1.17+): on its node, and on services registered
        here without their own."""
        return dict(self.config.locality) if self.config.locality else None

    def node_meta(self) -> dict[str, str]:
        meta = {"consul-network-segment": "", "consul-version": CONSUL_COMPAT_VERSION}
        meta.update(self.config.node_meta or {})
        return meta

    def tagged_addresses(self) -> dict[str, str]:
        addr = self.advertise_addr
        family = "ipv6" if ":" in addr else "ipv4"
        wan = getattr(self.config, "advertise_addr_wan", None) or addr
        # The user's `tagged_addresses` first: as in Consul, the agent's own addresses win.
        out = dict(getattr(self.config, "tagged_addresses", None) or {})
        out.update({"lan": addr, "wan": wan})
        if _is_ip(addr):
            out[f"lan_{family}"] = addr
        if _is_ip(wan):
            out[f"wan_{'ipv6' if ':' in wan else 'ipv4'}"] = wan
        # advertise_addr_ipv4/_ipv6 and advertise_addr_wan_ipv4/_ipv6 name them explicitly.
        c = self.config
        for key, value in (
            ("lan_ipv4", getattr(c, "advertise_addr_ipv4", None)),
            ("lan_ipv6", getattr(c, "advertise_addr_ipv6", None)),
            ("wan_ipv4", getattr(c, "advertise_addr_wan_ipv4", None)),
            ("wan_ipv6", getattr(c, "advertise_addr_wan_ipv6", None)),
        ):
            if value:
                out[key] = value
        return out

    def _server_serf_status(self) -> dict[str, str]:
        """Gossip status of every server, keyed by node ID (for autopilot health)."""
        return {
            m.tags.get("id", ""): m.status.label()
            for m in self.gossip.members()
            if m.tags.get("role") == "consul"
        }

    def _server_serf_names(self) -> dict[str, str]:
        """Gossip node name of every server, keyed by node ID (names Raft peers)."""
        return {
            m.tags.get("id", ""): m.name
            for m in self.gossip.members()
            if m.tags.get("role") == "consul"
        }

    def _server_coordinates(self) -> list[tuple[str, dict[str, Any]]]:
        """The servers of this datacenter with a known gossip coordinate (ours included)."""
        out = []
        for m in self.gossip.members():
            if m.tags.get("role") != "consul" or m.tags.get("dc") != self.datacenter:
                continue
            coord = self.gossip.coordinate(m.name)
            if coord is not None:
                out.append((m.name, coord.to_api()))
        return out

    def lan_coordinate(self) -> Coordinate | None:
        return self.gossip.coordinate()

    def lan_member_count(self) -> int:
        return len(self.gossip.members())

    async def _stop_coordinates(self) -> None:
        if self.coordinates is not None:
            await self.coordinates.stop()

    # ---------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.server is not None:
            self._check_rejoin_age()
            await self.server.start()
        if self.wan is not None:
            await self.wan.start()
        await self.gossip.start()
        if self.wan is not None and self.config.ports.serf_wan == 0:
            # The OS picked the WAN port: announce it (wan_join_port) in both pools.
            tags = self.member_tags()
            await self.gossip.set_tags(tags)
            await self.wan.set_tags(tags)
        if self.wan is not None:
            wan = self.wan
            self.gossip.on_member_event(lambda _event: wan.request_flood())
            wan.start_flood(self.gossip.members)
        if self.membership is not None:
            self.membership.start()
        await self._load_local_state()
        self.checks.start()
        self.sync.start()
        if self.coordinates is not None:
            self.coordinates.start()
        await self.proxy_config.start()

    def _check_rejoin_age(self) -> None:
        """server_rejoin_age_max: refuse to start a server whose data dir was last running
        too long ago; otherwise keep recording that it runs (data_dir/server_metadata.json)."""
        cfg = self.config
        if cfg.dev or not cfg.data_dir:
            return
        try:
            server_metadata.check_age(cfg.data_dir, cfg.server_rejoin_age_max, time.time())
        except server_metadata.RejoinTooOld as exc:
            raise AgentError(str(exc)) from exc
        self._metadata_task = asyncio.get_running_loop().create_task(
            server_metadata.keep_recording(cfg.data_dir)
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until a leader is known and this node is in the catalog (what a user would
        poll for before relying on sessions, which need the node registered)."""
        from consulpy.server.endpoints.authz import PermissionDenied
        from consulpy.server.query import STALE, QueryOptions

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                info = await self.delegate.status()
                if info.get("leader"):
                    _, node = await self.delegate.read(
                        "Catalog.NodeServices",
                        {"node": self.node_name},
                        QueryOptions(consistency=STALE),
                    )
                    if node is not None:
                        return
            except PermissionDenied:
                # ACLs on and this agent's token may not read its node: the servers answer,
                # which is all this can check (the leader registers the node from gossip).
                return
            except Exception as exc:  # not ready yet: no servers, no leader
                log.debug("agent not ready yet", reason=str(exc))
            if loop.time() > deadline:
                raise AgentError("the agent did not become ready: no leader or not registered")
            await asyncio.sleep(0.05)

    async def leave(self) -> None:
        """Leave the cluster gracefully (others see `left`, not `failed`). A server leader
        first removes itself from the Raft configuration when other servers remain, as Consul
        does, so quorum shrinks safely; a follower leaves gossip and waits (up to
        LEAVE_RAFT_WAIT) for the leader to remove it. A server then keeps serving for
        performance.leave_drain_time."""
        node = self._raft_node()
        was_leader = False
        if node is not None and node.is_leader:
            others = [s for s in node.configuration() if s.get("id") != self.node_id]
            if others:
                was_leader = True
                try:
                    await node.remove_server(self.node_id, timeout=LEAVE_RAFT_WAIT)
                except Exception as exc:
                    log.error("failed to remove ourself as a Raft peer", error=str(exc))
        if self.wan is not None:
            await self.wan.leave()
        await self.gossip.leave()
        if node is not None and not was_leader:
            await self._wait_raft_removal(node)
        drain = self.config.performance.leave_drain_time
        if self.server is not None and drain > 0:
            # Consul's performance.leave_drain_time: clients that have not seen the leave yet
            # still get answers from this server for a while before it shuts down.
            log.info("waiting to drain RPC traffic", drain_time=f"{drain:g}s")
            await asyncio.sleep(drain)

    def _raft_node(self) -> Any:
        raft = getattr(self.server, "raft", None) if self.server is not None else None
        return getattr(raft, "node", None)

    async def _wait_raft_removal(self, node: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEAVE_RAFT_WAIT
        while loop.time() < deadline:
            try:
                ids = {s.get("id") for s in node.configuration()}
            except Exception:
                return
            if self.node_id not in ids or len(ids) <= 1:
                return
            await asyncio.sleep(0.05)
        log.warning("failed to leave Raft configuration gracefully, timeout")

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        parts: list[tuple[str, Callable[[], Any]]] = [
            ("sync", self.sync.stop),
            ("coordinates", self._stop_coordinates),
            ("proxy_config", self.proxy_config.stop),
            ("leaf_certs", self.leaf_certs.stop),
            ("checks", self.checks.stop),
        ]
        if self.membership is not None:
            parts.append(("membership", self.membership.stop))
        parts.append(("gossip", self.gossip.shutdown))
        if self.wan is not None:
            parts.append(("wan_gossip", self.wan.shutdown))
        if self.client is not None:
            parts.append(("rpc_client", self.client.close))
        if self.server is not None:
            parts.append(("server", self.server.stop))
        if self._metadata_task is not None:
            parts.append(("server_metadata", self._stop_metadata))
        for name, stop in parts:
            began = loop.time()
            await stop()
            log.debug("stopped", part=name, seconds=round(loop.time() - began, 3))
        log.info("agent stopped", node=self.node_name)

    async def _stop_metadata(self) -> None:
        task, self._metadata_task = self._metadata_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------- local services & checks
    def script_checks_enabled(self, source: str) -> bool:
        cfg = self.config
        return bool(cfg.enable_script_checks) or (
            bool(cfg.enable_local_script_checks) and source == "config"
        )

    async def register_service(
        self,
        body: dict[str, Any],
        *,
        replace_existing_checks: bool = False,
        token: str = "",
        source: str = "api",
    ) -> str:
        """Validate and add a service with its checks, then sync it to the catalog before
        returning (so it is visible in /v1/catalog right after, as users expect)."""
        defn = decode_service_definition(body)
        row = service_from_definition(defn)
        if not row.get("Locality"):
            row["Locality"] = self.locality()
        sid = row["ID"]
        check_bodies = service_checks(dict(defn, ID=sid))
        parsed = [(self.checks.parse(b, service_id=sid), b) for b in check_bodies]
        runners = [self.checks.prepare(check, source=source) for check, _ in parsed]
        sidecar = self._sidecar_for(defn, sid)
        if sidecar is not None:
            service_from_definition(sidecar)  # refuse a bad sidecar before changing anything
        self.local.add_service(row, token=defn.get("Token") or token, source=source)
        for (check, check_body), runner in zip(parsed, runners, strict=True):
            await self.checks.add(check, check_body, source=source, token=token, runner=runner)
        if replace_existing_checks:
            keep = {check.id for check, _ in parsed}
            for old in self.local.service_checks(sid):
                cid = old.row["CheckID"]
                if cid not in keep and not cid.startswith("_service_maintenance:"):
                    await self.checks.remove(cid)
        if sidecar is not None:
            await self.register_service(sidecar, token=token, source=source)
        elif sidecar_id(sid) in self.local.services and not defn.get("Kind"):
            await self._remove_service(sidecar_id(sid))
        self.local.changed()
        await self._push_now()
        return sid

    async def deregister_service(self, service_id: str) -> None:
        """Remove a service, its checks and its sidecar, here and in the catalog."""
        await self._remove_service(service_id)
        if sidecar_id(service_id) in self.local.services:
            await self._remove_service(sidecar_id(service_id))
        self.local.changed()
        await self._push_now()

    async def _remove_service(self, service_id: str) -> None:
        for check in self.local.service_checks(service_id):
            await self.checks.remove(check.row["CheckID"])
        self.local.remove_service(service_id)

    def _sidecar_for(self, defn: dict[str, Any], parent_id: str) -> dict[str, Any] | None:
        """Expand Connect.SidecarService with this agent's port bookkeeping."""
        previous = self.local.services.get(sidecar_id(parent_id))
        used = {
            svc.row.get("Port")
            for sid, svc in self.local.services.items()
            if svc.row.get("Kind") == "connect-proxy" and sid != sidecar_id(parent_id)
        }
        ports = self.config.ports
        return expand_sidecar(
            dict(defn, ID=parent_id),
            previous_port=previous.row.get("Port") if previous is not None else None,
            used_ports={p for p in used if p},
            port_range=(ports.sidecar_min_port, ports.sidecar_max_port),
        )

    async def register_check(
        self, body: dict[str, Any], *, token: str = "", source: str = "api"
    ) -> str:
        from consulpy.agent.definitions import CHECK_TYPE
        from consulpy.util.decode import DecodeError, decode_struct

        try:
            decoded = decode_struct(body, CHECK_TYPE)
        except DecodeError as exc:
            raise DefinitionError(f"Request decode failed: {exc}") from exc
        for field in ("Namespace", "Partition"):
            if decoded.get(field) not in (None, "", "default"):
                raise DefinitionError(f"{field}s are a Consul Enterprise feature")
        defn = self.checks.parse(decoded)
        if defn.service_id and defn.service_id not in self.local.services:
            raise DefinitionError(f'ServiceID "{defn.service_id}" does not exist', status=404)
        await self.checks.add(defn, decoded, source=source, token=token)
        self.local.changed()
        await self._push_now()
        return defn.id

    async def deregister_check(self, check_id: str) -> None:
        await self.checks.remove(check_id)
        self.local.changed()
        await self._push_now()

    async def update_ttl(self, check_id: str, status: str, output: str) -> None:
        """A TTL push. A status change reaches the catalog before the call returns (consulpy
        is stricter than Consul here, whose sync follows shortly after)."""
        before = self.local.checks[check_id].row["Status"]
        self.checks.ttl_update(check_id, status, output)
        if before != status:
            await self._push_now()

    async def node_maintenance(self, enable: bool, reason: str) -> None:
        if self.local.node_maintenance(enable, reason):
            self.local.changed()
            await self._push_now()

    async def service_maintenance(self, service_id: str, enable: bool, reason: str) -> None:
        if self.local.service_maintenance(service_id, enable, reason):
            self.local.changed()
            await self._push_now()

    async def _push_now(self) -> None:
        try:
            await self.sync.push()
        except Exception as exc:  # local state stays out of sync; the sync loop retries
            log.warning("catalog sync deferred", error=str(exc))
            self.sync.trigger()

    async def _load_local_state(self) -> None:
        """Services and checks from the config files, then those persisted from the API."""
        for body in self.config.services:
            await self._register_logged(self.register_service(body, source="config"), body)
        for body in self.config.checks:
            await self._register_logged(self.register_check(body, source="config"), body)
        services, checks = self.local.load()
        for doc in services:
            row = doc["row"]
            self.local.add_service(row, token=doc.get("token", ""), source="api")
        for doc in checks:
            body = doc.get("definition") or {}
            try:
                defn = self.checks.parse(body)
            except DefinitionError as exc:
                log.error(
                    "dropping persisted check", check=doc["row"].get("CheckID"), error=str(exc)
                )
                continue
            await self.checks.add(defn, body, source="api", token=doc.get("token", ""))
            persisted = doc["row"]
            status = persisted.get("Status", "critical")
            output = persisted.get("Output", "")
            if self.checks.is_ttl(defn.id):
                # Consul persists TTL check state: the check resumes as it was, timer and all.
                self.checks.ttl_update(defn.id, status, output)
            else:
                self.local.update_check(defn.id, status, output)
        if services or checks:
            self.local.changed(persist=False)

    async def _register_logged(self, registration: Any, body: dict[str, Any]) -> None:
        try:
            await registration
        except DefinitionError as exc:
            log.error(
                "invalid definition in config",
                definition=body.get("Name") or body.get("ID"),
                error=str(exc),
            )

    async def reload(self) -> None:
        """Re-read the config (same files and flags as at start) and apply what Consul applies
        at run time: config services and checks are replaced (check status kept), the reload
        hooks get the new config, and settings that need a restart are logged. A config that
        does not load, or a definition that does not validate, is refused before anything
        changes."""
        if self.reload_config is None:
            raise AgentError("this agent was not started from config files")
        new = self.reload_config()  # ConfigError: nothing changed
        try:
            self._validate_definitions(new)
        except DefinitionError as exc:
            raise AgentError(f"Failed reloading services: {exc}") from exc
        old = self.config
        changed = restart_needed(old, new)
        for name in changed:
            log.warning("setting changed; it needs a restart to apply", setting=name)
        new = keep_restart_settings(old, new)
        self.config = new
        try:
            for hook in self.reload_hooks:
                result: Any = hook(new)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            self.config = old
            raise
        saved = {
            cid: (c.row["Status"], c.row.get("Output", ""))
            for cid, c in self.local.checks.items()
            if c.source == "config"
        }
        for sid, svc in list(self.local.services.items()):
            if svc.source == "config":
                await self.deregister_service(sid)
        for cid, check in list(self.local.checks.items()):
            if check.source == "config":
                await self.deregister_check(cid)
        for body in new.services:
            await self._register_logged(self.register_service(body, source="config"), body)
        for body in new.checks:
            await self._register_logged(self.register_check(body, source="config"), body)
        self._restore_check_status(saved)
        log.info("configuration reloaded", services=len(new.services), checks=len(new.checks))

    def _validate_definitions(self, new: AgentConfig) -> None:
        from consulpy.agent.definitions import CHECK_TYPE
        from consulpy.util.decode import DecodeError, decode_struct

        for body in new.services:
            defn = decode_service_definition(body)
            row = service_from_definition(defn)
            for check_body in service_checks(dict(defn, ID=row["ID"])):
                self.checks.parse(check_body, service_id=row["ID"])
        for body in new.checks:
            try:
                self.checks.parse(decode_struct(body, CHECK_TYPE))
            except DecodeError as exc:
                raise DefinitionError(f"Request decode failed: {exc}") from exc

    def _restore_check_status(self, saved: dict[str, tuple[str, str]]) -> None:
        """Consul keeps the status of a config check across a reload (no flap to critical)."""
        for cid, (status, output) in saved.items():
            if cid not in self.local.checks:
                continue
            if self.checks.is_ttl(cid):
                self.checks.ttl_update(cid, status, output)
            else:
                self.local.update_check(cid, status, output)
        if saved:
            self.local.changed()

    # ----------------------------------------------------------- views
    def member_tags(self) -> dict[str, str]:
        """The gossip tags Consul agents carry (servers are found by role=consul)."""
        cfg = self.config
        tags = {
            "acls": "1" if cfg.acl.enabled else "0",  # Consul's ACL modes: 0 off, 1 on
            "build": f"{CONSUL_COMPAT_VERSION}:consulpy-{__version__}",
            "dc": self.datacenter,
            "ft_fs": "1",
            "ft_si": "1",
            "id": self.node_id,
            "role": "consul" if cfg.server else "node",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
        }
        if cfg.advertise_reconnect_timeout > 0 and not cfg.server:
            tags[RECONNECT_TIMEOUT_TAG] = format_duration(cfg.advertise_reconnect_timeout)
        if cfg.server:
            tags["port"] = str(self._server_port())
            tags["raft_vsn"] = "3"
            wan = getattr(self, "wan", None)  # None while the pools are being built
            tags["wan_join_port"] = str(
                wan.port if wan is not None and wan.port else cfg.ports.serf_wan
            )
            if cfg.bootstrap or cfg.dev:
                tags["bootstrap"] = "1"
            if cfg.bootstrap_expect:
                tags["expect"] = str(cfg.bootstrap_expect)
        return tags

    def member(self) -> dict[str, Any]:
        from consulpy.agent.gossip import member_view

        return member_view(self.gossip.serf.local_member())

    def members(self, wan: bool = False) -> list[dict[str, Any]]:
        """The LAN members, or with `wan` the WAN pool's (a client agent, or a server with
        ports.serf_wan = -1, is in no WAN pool: none, as Consul answers)."""
        if wan:
            members = self.wan.member_views() if self.wan is not None else []
        else:
            members = self.gossip.member_views()
        return sorted(members, key=lambda m: m["Name"])

    def may_route_to(self, dc: str) -> bool:
        """Whether a request for datacenter `dc` may go on: a server knows the datacenters
        of its WAN pool; a client agent asks its servers (they answer when it cannot)."""
        if self.server is None:
            return True
        router = self.server.router
        return router is not None and router.known(dc)

    def datacenters(self) -> list[str]:
        """Known datacenters, nearest first (a client agent knows only its own)."""
        router = self.server.router if self.server is not None else None
        return router.datacenters() if router is not None else [self.datacenter]
