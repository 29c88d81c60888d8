"""Forwarding names outside the Consul domains to the configured recursors.

The client's message goes out as it came (same ID, flags and EDNS), over the transport the
client used; a truncated UDP reply is retried over TCP with the same recursor. A reply whose
RCODE is neither NOERROR nor NXDOMAIN, a timeout or a network error moves on to the next
recursor (in order, or shuffled per query with `recursor_strategy = "random"`).
"""

from __future__ import annotations

import random

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import structlog

log = structlog.get_logger("consulpy.dns")

_ACCEPTABLE = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)


class Recursors:
    def __init__(
        self, servers: tuple[tuple[str, int], ...], *, strategy: str, timeout: float
    ) -> None:
        self.servers = servers
        self.strategy = strategy
        self.timeout = timeout

    def __bool__(self) -> bool:
        return bool(self.servers)

    def _order(self) -> list[tuple[str, int]]:
        order = list(self.servers)
        if self.strategy == "random":
            random.shuffle(order)
        return order

    async def exchange(
        self, query: dns.message.Message, *, tcp: bool
    ) -> dns.message.Message | None:
        """The first acceptable reply, or None when every recursor failed."""
        for host, port in self._order():
            try:
                reply = await self._one(query, host, port, tcp)
            except (TimeoutError, OSError, EOFError, dns.exception.DNSException) as exc:
                log.debug("recursor failed", recursor=f"{host}:{port}", error=str(exc))
                continue
            if reply.rcode() in _ACCEPTABLE:
                return reply
            log.debug("recursor refused", recursor=f"{host}:{port}", rcode=reply.rcode())
        return None

    async def _one(
        self, query: dns.message.Message, host: str, port: int, tcp: bool
    ) -> dns.message.Message:
        if not tcp:
            reply = await dns.asyncquery.udp(
                query, host, timeout=self.timeout, port=port, ignore_unexpected=True
            )
            if not reply.flags & dns.flags.TC:
                return reply
        return await dns.asyncquery.tcp(query, host, timeout=self.timeout, port=port)
