"""The composition root: one agent with the servers that face its users.

`consulpy agent`, `consulpy.testing.DevAgent` and (through `consulpy agent`) the dev cluster
all start an agent here, so the wiring lives in one place and the layers stay one-way:
`consulpy.http`, `consulpy.dns` and `consulpy.xds` depend on `consulpy.agent`, never the reverse.

    runtime = Runtime(config)
    await runtime.start()        # agent, then xDS, then DNS, then HTTP
    ...
    await runtime.stop()         # the reverse order

Start order: the agent first (server role, gossip, local state, checks, sync, proxy config
watches), then the listeners that serve what the agent holds, so no request arrives before
the agent can answer it. Stop is the reverse: listeners close before the agent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from consulpy.agent import metrics_feed
from consulpy.agent.acl import dns_token
from consulpy.agent.agent import Agent, AgentError
from consulpy.agent.config_watch import ConfigWatcher
from consulpy.agent.watches import AgentWatches, WatchError, install_watches
from consulpy.http.app import HTTPListeners
from consulpy.metrics import METRICS
from consulpy.metrics.telemetry import Telemetry, TelemetryError, TelemetrySettings
from consulpy.rpc import tls as rpc_tls
from consulpy.util.pidfile import remove_pid_file, write_pid_file
from consulpy.xds.mesh import Mesh, MeshError

if TYPE_CHECKING:
    from consulpy.config import AgentConfig
    from consulpy.dns import DNSServer

log = structlog.get_logger("consulpy.runtime")


class Runtime:
    """Builds and runs an agent with its HTTP and xDS listeners."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reload_config: Callable[[], AgentConfig] | None = None,
        check_min_interval: float | None = None,
    ) -> None:
        self.agent = Agent(
            config, reload_config=reload_config, check_min_interval=check_min_interval
        )
        try:
            settings = TelemetrySettings.from_config(config.telemetry)
        except TelemetryError as exc:
            raise AgentError(str(exc)) from exc
        self.telemetry = Telemetry(METRICS, settings, self.agent.node_name)
        self.telemetry.collectors.append(metrics_feed.connect(self.agent, METRICS))
        self.agent.reload_hooks.append(self._reload_telemetry)
        self.http = HTTPListeners(self.agent, settings)
        self.https_context: ssl.SSLContext | None = None
        self.agent.reload_hooks.append(self._reload_tls_hook)
        self.xds = Mesh(config, self.agent.proxy_config.lookup)
        # DNS off (ports.dns = -1): its modules (dnspython, ~3 MiB of a server's memory) are
        # not even imported. A reload cannot turn it on (ports are not reloadable, as in Consul).
        self.dns: DNSServer | None = None
        if config.dns_addresses():
            from consulpy.dns import DNSServer, DNSSettings

            dns = self.dns = DNSServer(self.agent.delegate, DNSSettings.from_agent_config(config))
            dns.lookups.token = dns_token(self.agent)
            self.agent.reload_hooks.append(
                lambda new: dns.reload(DNSSettings.from_agent_config(new))
            )
        self.agent.mesh = self.xds
        self.agent.reload_hooks.append(
            lambda new: self.xds.update_limiter.update(new.xds_update_max_per_second)
        )
        self.watches: AgentWatches | None = None
        self.config_watcher: ConfigWatcher | None = None
        self.pid_file: str | None = None

    async def start(self) -> None:
        """Start the agent, then its listeners. On failure what started is stopped again, and
        the error is an `AgentError` (gRPC listener) or an `OSError` (HTTP address in use)."""
        agent = self.agent
        try:
            try:
                self.telemetry.start()
            except TelemetryError as exc:
                raise AgentError(str(exc)) from exc
            await agent.start()
            try:
                await self.xds.start()
            except (MeshError, OSError) as exc:
                raise AgentError(f"gRPC (xDS) listener: {exc}") from exc
            try:
                if self.dns is not None:
                    agent.dns_addresses = await self.dns.start(agent.config.dns_addresses())
            except OSError as exc:
                raise AgentError(f"DNS listener: {exc}") from exc
            https = agent.config.https_addresses()
            https_unix = agent.config.https_unix_paths()
            if https or https_unix:
                try:
                    self.https_context = rpc_tls.server_context(
                        agent.config.tls.https, alpn=["http/1.1"]
                    )
                except rpc_tls.TLSConfigError as exc:
                    raise AgentError(f"HTTPS listener (ports.https): {exc}") from exc
            agent.http_addresses = await self.http.start(
                agent.config.http_addresses(),
                https,
                self.https_context,
                agent.config.limits.https_handshake_timeout,
                unix=agent.config.http_unix_paths(),
                https_unix=https_unix,
                unix_sockets=agent.config.unix_sockets,
            )
            agent.https_addresses = list(self.http.https_addresses)
            agent.http_unix_paths = list(self.http.unix_paths)
            try:
                self.watches = install_watches(agent)
            except WatchError as exc:
                raise AgentError(str(exc)) from exc
            agent.reload_hooks.append(self._apply_rpc_limits)
            if agent.config.auto_reload_config and agent.reload_config is not None:
                self.config_watcher = ConfigWatcher(lambda: agent.config, agent.reload)
                self.config_watcher.start()
            if agent.config.pid_file:
                try:
                    write_pid_file(agent.config.pid_file)
                except OSError as exc:
                    raise AgentError(f"Could not write PID file: {exc}") from exc
                self.pid_file = agent.config.pid_file
        except Exception:
            await self.stop()
            raise
        log.info(
            "agent started",
            node=agent.node_name,
            node_id=agent.node_id,
            datacenter=agent.datacenter,
            server=bool(agent.config.server),
            http=[f"{h}:{p}" for h, p in agent.http_addresses],
            https=[f"{h}:{p}" for h, p in self.http.https_addresses],
            unix=self.http.unix_paths,
            dns=[f"{h}:{p}" for h, p in agent.dns_addresses],
            grpc=self.xds.plaintext_port,
            serf_lan=f"{agent.advertise_addr}:{agent.gossip.port}",
        )

    def check_tls(self, config: AgentConfig) -> None:
        """Load every certificate, key and CA `config` names for the running TLS listeners
        into scratch contexts; AgentError with the reason if one is bad. Changes nothing, so
        a config reload can run this before it applies anything."""
        try:
            if self.https_context is not None:
                rpc_tls.check_material(config.tls.https)
            if self.agent.tls.server is not None:
                rpc_tls.check_material(config.tls)
            if self.xds.tls is not None:
                rpc_tls.check_material(config.tls.grpc)
            self.xds.check_tls(config)
        except (rpc_tls.TLSConfigError, MeshError) as exc:
            raise AgentError(f"reloading TLS: {exc}") from exc

    def reload_tls(self, config: AgentConfig | None = None) -> None:
        """Load the certificates and CAs named by `config` (default: the agent's current one)
        into the live HTTPS, server-port and gRPC TLS listeners. New connections get them; open
        ones carry on. Nothing changes if any file is bad (AgentError with the reason).
        TLS is not switched on or off here: a listener without TLS stays so until restart."""
        config = config or self.agent.config
        self.check_tls(config)
        try:
            if self.https_context is not None:
                self.https_context.verify_mode = (
                    ssl.CERT_REQUIRED if config.tls.https.verify_incoming else ssl.CERT_NONE
                )
                rpc_tls.reload_into(self.https_context, config.tls.https)
            rpc_tls.reload_rpc(self.agent.tls, config.tls)
            self.xds.reload_tls(config)
        except (rpc_tls.TLSConfigError, MeshError) as exc:  # a file changed since the check
            raise AgentError(f"reloading TLS: {exc}") from exc
        log.info(
            "TLS certificates reloaded",
            https=self.https_context is not None,
            rpc=self.agent.tls.server is not None,
            grpc=self.xds.tls is not None,
        )

    def _reload_tls_hook(self, config: AgentConfig) -> None:
        self.reload_tls(config)

    def _reload_telemetry(self, config: AgentConfig) -> None:
        """Reload hook: telemetry.prefix_filter and filter_default apply at run time, as in
        Consul; the other telemetry settings need a restart."""
        try:
            self.telemetry.reload(TelemetrySettings.from_config(config.telemetry))
        except TelemetryError as exc:
            raise AgentError(str(exc)) from exc

    def _apply_rpc_limits(self, config: AgentConfig) -> None:
        """Reload hook: limits.rpc_rate, rpc_max_burst, rpc_max_conns_per_client and
        rpc_client_timeout apply at run time, as in Consul (a lower connection limit refuses
        new connections only; a new timeout applies to the next calls)."""
        client = getattr(self.agent, "client", None)
        if client is not None:
            client.rpc_client_timeout = config.limits.rpc_client_timeout
        server = self.agent.server
        if server is None:
            return
        server.rpc_client_timeout = config.limits.rpc_client_timeout
        if server.rpc_server.limiter is not None:
            server.rpc_server.limiter.update(config.limits.rpc_rate, config.limits.rpc_max_burst)
        server.rpc_server.max_conns_per_client = config.limits.rpc_max_conns_per_client

    async def stop(self, *, exiting: bool = False) -> None:
        """Listeners first (open blocking queries and streams are cut off promptly), then
        the agent. `exiting`: the process ends right after, so abandoned requests need no
        unwinding."""
        loop = asyncio.get_running_loop()

        async def stop_http() -> None:
            await self.http.stop(exiting=exiting)

        async def stop_watches() -> None:
            if self.config_watcher is not None:
                await self.config_watcher.stop()
                self.config_watcher = None
            if self.watches is not None:
                await self.watches.stop()

        parts = (
            ("watches", stop_watches),
            ("http", stop_http),
            ("dns", self.dns.stop if self.dns is not None else _nothing),
            ("xds", self.xds.stop),
            ("agent", self.agent.stop),
            ("telemetry", self.telemetry.stop),
        )
        for name, stop in parts:
            began = loop.time()
            await stop()
            log.debug("stopped", part=name, seconds=round(loop.time() - began, 3))
        if self.pid_file is not None:
            remove_pid_file(self.pid_file)
            self.pid_file = None


async def _nothing() -> None:
    """Stops a part that never started (DNS when it is off)."""
