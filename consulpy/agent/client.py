"""A client agent's delegate: the same endpoint calls a server offers in-process (`apply`,
`read`, `status`), sent over RPC by endpoint name to a server found through gossip, failing
over to the next one. Nothing here builds FSM commands or stamps times: the leader does."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from consulpy.metrics import METRICS
from consulpy.rpc.client import RPCClient
from consulpy.rpc.errors import RPCDialError, RPCError, RPCUnavailable
from consulpy.rpc.ratelimit import RATE_LIMITED
from consulpy.rpc.tls import RPCTLS
from consulpy.server.endpoints import REGISTRY
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, NoLeaderError
from consulpy.server.query import CONSUL_QUERY_TIMES, QueryMeta, QueryOptions, QueryTimes
from consulpy.server.router import target_dc
from consulpy.server.server import raise_remote, read_payload

if TYPE_CHECKING:
    from consulpy.agent.gossip import AgentGossip


class NoServersError(CommandError):
    def __init__(self) -> None:
        super().__init__("No known Consul servers")


class ClientDelegate:
    def __init__(
        self,
        gossip: AgentGossip,
        *,
        datacenter: str = "",  # "": the servers' own
        rpc_hold_timeout: float = 7.0,
        rpc_client_timeout: float = 60.0,
        tls: RPCTLS | None = None,
        agent_token: str = "",
        query_times: QueryTimes = CONSUL_QUERY_TIMES,
    ) -> None:
        self.gossip = gossip
        # The token of this agent's own calls (acl.tokens.agent, else acl.tokens.default):
        # anti-entropy, leaf certificates, proxy config; used when a call passes token=None.
        self.agent_token = agent_token
        self.datacenter = datacenter
        self.rpc = RPCClient(
            ssl_context=tls.client if tls else None,
            server_hostname=tls.server_hostname if tls else None,
        )
        self.rpc_hold_timeout = rpc_hold_timeout
        # limits.rpc_client_timeout: how long a call waits for its answer (0: forever); a
        # blocking query waits that long on top of its own wait, as in Consul.
        self.rpc_client_timeout = rpc_client_timeout
        self.query_times = query_times
        self._preferred: str | None = None
        self._rng = random.Random()

    def server_addresses(self) -> list[str]:
        """RPC addresses of the alive servers, the last one that answered first."""
        out = [f"{m.addr}:{m.tags.get('port', '8300')}" for m in self.gossip.servers()]
        self._rng.shuffle(out)
        if self._preferred in out:
            out.remove(self._preferred)
            out.insert(0, self._preferred)
        return out

    def _timeout(self, blocking: float = 0.0) -> float | None:
        return self.rpc_client_timeout + blocking if self.rpc_client_timeout > 0 else None

    async def _call(
        self, method: str, args: Any, timeout: float | None, *, retry_sent: bool
    ) -> Any:
        """Try servers in turn; a call that may have reached a server is retried only when
        `retry_sent` (reads), never for writes whose outcome would then be unknown."""
        deadline = time.monotonic() + self.rpc_hold_timeout
        while True:
            servers = self.server_addresses()
            if not servers:
                if time.monotonic() >= deadline:
                    raise NoServersError()
                await asyncio.sleep(0.1)
                continue
            for address in servers:
                METRICS.incr("client.rpc")
                try:
                    result = await self.rpc.call(address, method, args, timeout=timeout)
                    self._preferred = address
                    return result
                except RPCDialError:
                    METRICS.incr("client.rpc.failed")
                    continue
                except RPCUnavailable as exc:
                    METRICS.incr("client.rpc.failed")
                    if not retry_sent:
                        raise CommandError(
                            f"rpc error: {exc}; the write may or may not apply"
                        ) from exc
                    continue
                except RPCError as exc:
                    if exc.kind == RATE_LIMITED:
                        METRICS.incr("client.rpc.exceeded")
                    if exc.kind in ("no_leader", "not_leader") and time.monotonic() < deadline:
                        continue
                    raise_remote(exc)
            if time.monotonic() >= deadline:
                raise NoLeaderError()

    def _token(self, token: str | None) -> str:
        return self.agent_token if token is None else token

    async def apply(self, name: str, payload: Any, token: str | None = None) -> Any:
        """Call a write or leader endpoint on a server (which forwards it to the leader);
        never retried once sent, since its outcome would then be unknown."""
        request = Request(
            payload=payload, datacenter=target_dc(self.datacenter), token=self._token(token)
        )
        return await self._call(
            name, {"req": request.to_wire(), "hops": 0}, self._timeout(), retry_sent=False
        )

    async def read(
        self, name: str, args: Any, opts: QueryOptions, token: str | None = None
    ) -> tuple[QueryMeta, Any]:
        """Call a read endpoint; `args` is its typed payload or the payload's fields as a
        map (checked here too, so a typed request goes on the wire)."""
        ep = REGISTRY.get(name)
        if ep is None:
            raise CommandError(f"rpc: can't find method {name}")
        request = Request(
            payload=read_payload(ep, args),
            datacenter=target_dc(self.datacenter),
            token=self._token(token),
            options=opts,
        )
        timeout = self._timeout(opts.blocking_timeout(1.0, self.query_times) if opts.index else 0.0)
        reply = await self._call(
            name, {"req": request.to_wire(), "hops": 0}, timeout, retry_sent=True
        )
        return QueryMeta(**reply["meta"]), reply["result"]

    async def status(self) -> dict[str, Any]:
        request = Request(
            payload=Empty(), datacenter=target_dc(self.datacenter), token=self.agent_token
        )
        return await self._call(
            "Status.Info", {"req": request.to_wire(), "hops": 0}, 10, retry_sent=True
        )

    async def close(self) -> None:
        await self.rpc.close()
