"""The composition root: one agent with the servers that face its users.

`consulpy agent`, `consulpy.testing.DevAgent` and (through `consulpy agent`) the dev cluster
all start an agent here, so the wiring lives in one place and the layers stay one-way:
`consulpy.http` and `consulpy.xds` depend on `consulpy.agent`, never the reverse.

    runtime = Runtime(config)
    await runtime.start()        # agent, then xDS listeners, then HTTP
    ...
    await runtime.stop()         # the reverse order

Start order: the agent first (server role, gossip, local state, checks, sync, proxy config
watches), then the listeners that serve what the agent holds, so no request arrives before
the agent can answer it. Stop is the reverse: listeners close before the agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from consulpy.agent.agent import Agent, AgentError
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
        # DNS goes here when consulpy/dns/ exists: built from the agent like the listeners
        # above, started after xDS and before HTTP, stopped in reverse.
        self.agent.mesh = self.xds

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
            agent.http_addresses = await self.http.start(agent.config.http_addresses())
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
            grpc=self.xds.plaintext_port,
            serf_lan=f"{agent.advertise_addr}:{agent.gossip.port}",
        )

    async def stop(self, *, exiting: bool = False) -> None:
        """Listeners first (open blocking queries and streams are cut off promptly), then
        the agent. `exiting`: the process ends right after, so abandoned requests need no
        unwinding."""
        loop = asyncio.get_running_loop()

        async def stop_http() -> None:
            await self.http.stop(exiting=exiting)

        parts = (("http", stop_http), ("xds", self.xds.stop), ("agent", self.agent.stop))
        for name, stop in parts:
            began = loop.time()
            await stop()
            log.debug("stopped", part=name, seconds=round(loop.time() - began, 3))
