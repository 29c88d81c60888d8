"""A client agent's delegate: the same write / read / session_renew / status calls a server
offers, sent over RPC to a server found through gossip, failing over to the next one."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from consulpy.rpc.client import RPCClient
from consulpy.rpc.errors import RPCDialError, RPCError, RPCUnavailable
from consulpy.rpc.tls import RPCTLS
from consulpy.server.errors import CommandError, NoLeaderError
from consulpy.server.query import QueryMeta, QueryOptions
from consulpy.server.server import raise_remote

if TYPE_CHECKING:
    from consulpy.agent.gossip import AgentGossip


class NoServersError(CommandError):
    def __init__(self) -> None:
        super().__init__("No known Consul servers")


class ClientDelegate:
    def __init__(
        self, gossip: AgentGossip, *, rpc_hold_timeout: float = 7.0, tls: RPCTLS | None = None
    ) -> None:
        self.gossip = gossip
        self.rpc = RPCClient(
            ssl_context=tls.client if tls else None,
            server_hostname=tls.server_hostname if tls else None,
        )
        self.rpc_hold_timeout = rpc_hold_timeout
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

    async def _call(self, method: str, args: Any, timeout: float, *, retry_sent: bool) -> Any:
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
                try:
                    result = await self.rpc.call(address, method, args, timeout=timeout)
                    self._preferred = address
                    return result
                except RPCDialError:
                    continue
                except RPCUnavailable as exc:
                    if not retry_sent:
                        raise CommandError(
                            f"rpc error: {exc}; the write may or may not apply"
                        ) from exc
                    continue
                except RPCError as exc:
                    if exc.kind in ("no_leader", "not_leader") and time.monotonic() < deadline:
                        continue
                    raise_remote(exc)
            if time.monotonic() >= deadline:
                raise NoLeaderError()

    async def write(self, cmd: dict[str, Any]) -> Any:
        return await self._call(
            "Server.Write", {"cmd": cmd, "hops": 0}, self.rpc_hold_timeout + 30, retry_sent=False
        )

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]:
        timeout = (opts.blocking_timeout(1.0) if opts.index else 0) + self.rpc_hold_timeout + 30
        reply = await self._call(
            "Server.Read",
            {"name": name, "args": args, "opts": opts.to_wire(), "hops": 0},
            timeout,
            retry_sent=True,
        )
        return QueryMeta(**reply["meta"]), reply["result"]

    async def session_renew(self, session_id: str) -> dict[str, Any] | None:
        return await self._call(
            "Server.SessionRenew",
            {"id": session_id, "hops": 0},
            self.rpc_hold_timeout + 5,
            retry_sent=True,
        )

    async def status(self) -> dict[str, Any]:
        return await self._call("Status.Info", None, 10, retry_sent=True)

    async def leader_call(self, name: str, args: dict[str, Any]) -> Any:
        """Operator calls: any server forwards them to the leader."""
        return await self._call(
            name, {"args": args, "hops": 0}, self.rpc_hold_timeout + 30, retry_sent=False
        )

    async def close(self) -> None:
        await self.rpc.close()
