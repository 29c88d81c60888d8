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

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from consulpy.agent.acl import dns_token
from consulpy.agent.agent import Agent, AgentError
from consulpy.agent.watches import AgentWatches, WatchError, install_watches
from consulpy.dns import DNSServer, DNSSettings
from consulpy.http.app import HTTPListeners
from consulpy.xds.mesh import Mesh, MeshError

if TYPE_CHECKING:
    from consulpy.config import AgentConfig

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
        self.http = HTTPListeners(self.agent)
        self.xds = Mesh(config, self.agent.proxy_config.lookup)
        self.dns = DNSServer(self.agent.delegate, DNSSettings.from_agent_config(config))
        self.dns.lookups.token = dns_token(self.agent)
        self.agent.reload_hooks.append(
            lambda new: self.dns.reload(DNSSettings.from_agent_config(new))
        )
        self.agent.mesh = self.xds
        self.watches: AgentWatches | None = None

    async def start(self) -> None:
        """Start the agent, then its listeners. On failure what started is stopped again, and
        the error is an `AgentError` (gRPC listener) or an `OSError` (HTTP address in use)."""
        agent = self.agent
        try:
            await agent.start()
            try:
                await self.xds.start()
            except (MeshError, OSError) as exc:
                raise AgentError(f"gRPC (xDS) listener: {exc}") from exc
            try:
                agent.dns_addresses = await self.dns.start(agent.config.dns_addresses())
            except OSError as exc:
                raise AgentError(f"DNS listener: {exc}") from exc
            agent.http_addresses = await self.http.start(agent.config.http_addresses())
            try:
                self.watches = install_watches(agent)
            except WatchError as exc:
                raise AgentError(str(exc)) from exc
            agent.reload_hooks.append(self._apply_rpc_limits)
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
            dns=[f"{h}:{p}" for h, p in agent.dns_addresses],
            grpc=self.xds.plaintext_port,
            serf_lan=f"{agent.advertise_addr}:{agent.gossip.port}",
        )

    def _apply_rpc_limits(self, config: AgentConfig) -> None:
        """Reload hook: limits.rpc_rate and rpc_max_burst apply at run time, as in Consul."""
        server = self.agent.server
        if server is not None and server.rpc_server.limiter is not None:
            server.rpc_server.limiter.update(config.limits.rpc_rate, config.limits.rpc_max_burst)

    async def stop(self) -> None:
        if self.watches is not None:
            await self.watches.stop()
        await self.http.stop()
        await self.dns.stop()
        await self.xds.stop()
        await self.agent.stop()
