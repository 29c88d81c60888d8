"""The DNS listeners: one UDP socket and one TCP listener per client address, same port.

Requests are decoded and answered with dnspython (`answer.Responder`); encoded answers are
reused through `cache.AnswerCache`, whose hits never touch the catalog or the codec. Input
that does not parse gets FORMERR when it has a DNS header to answer to and is dropped
otherwise; the server keeps serving either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import structlog

from consulpy.dns.answer import Plan, Responder
from consulpy.dns.cache import AnswerCache
from consulpy.dns.lookup import CatalogWatch, Lookups, Reader
from consulpy.dns.recursor import Recursors
from consulpy.dns.settings import DNSSettings
from consulpy.dns.truncate import Draft, encode, fit
from consulpy.metrics import METRICS
from consulpy.util import aio

log = structlog.get_logger("consulpy.dns")

TCP_IDLE_TIMEOUT = 30.0
# Requests that missed the cache and are being looked up; UDP beyond this is dropped (clients
# retry), so a flood of distinct names cannot grow memory without bound.
MAX_PENDING = 2000
_HEADER = 12


def is_reverse_query(data: bytes) -> bool:
    """Whether the request's question is under in-addr.arpa. or ip6.arpa., read from the
    wire (cached answers are served without parsing the request)."""
    prev = last = -1
    i, end = _HEADER, len(data)
    while True:
        if i >= end:
            return False
        length = data[i]
        if length == 0:
            break
        if length & 0xC0:  # a pointer has no place in a question
            return False
        prev, last = last, i
        i += length + 1
    if prev < 0:
        return False
    top = data[last + 1 : last + 1 + data[last]].lower()
    second = data[prev + 1 : prev + 1 + data[prev]].lower()
    return top == b"arpa" and second in (b"in-addr", b"ip6")


class DNSServer:
    def __init__(self, delegate: Reader, settings: DNSSettings) -> None:
        self.delegate = delegate
        self.lookups = Lookups(delegate, settings)
        self.watch = CatalogWatch(self.lookups)
        self.cache = AnswerCache(lambda: self.watch.generation)
        self.lookups.generation = lambda: self.watch.generation
        self.reload(settings)
        self.addresses: list[tuple[str, int]] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def reload(self, settings: DNSSettings) -> None:
        """Apply new settings (all but the listeners); cached answers are dropped."""
        self.settings = settings
        self._metric_labels = (("node", settings.node_name),)  # as Consul labels its DNS timers
        self.lookups.settings = settings
        self.recursors = Recursors(
            settings.recursors,
            strategy=settings.recursor_strategy,
            timeout=settings.recursor_timeout,
        )
        self.responder = Responder(self.lookups, settings, self.recursors)
        self.cache.clear()

    # ------------------------------------------------------------ lifecycle
    async def start(self, addresses: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Bind UDP then TCP on the same port for each address (port 0: a free one); returns
        the bound addresses. Without addresses (DNS disabled) nothing runs."""
        if not addresses:
            return []
        self.watch.start()
        for host, port in addresses:
            await self._bind(host, port)
        return list(self.addresses)

    async def _bind(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _attempt in range(20 if port == 0 else 1):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDP(self), local_addr=(host, port), family=family
            )
            bound = udp.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(
                    self._serve_tcp, host, bound, family=family, reuse_address=True
                )
            except OSError:
                udp.close()
                if port == 0:
                    continue  # the TCP side of that port is taken: pick another
                raise
            self._udp.append(udp)  # type: ignore[arg-type]
            self._tcp.append(server)
            self.addresses.append((host, bound))
            return
        raise OSError(f"no free port for DNS on {host}")

    async def stop(self) -> None:
        await self.watch.stop()
        for udp in self._udp:
            udp.close()
        for server in self._tcp:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self._udp, self._tcp = [], []
        self.addresses = []

    # ------------------------------------------------------------- requests
    def cached(self, data: bytes, tcp: bool) -> bytes | None:
        """The answer from the cache (with the request's ID), or None."""
        if len(data) < _HEADER:
            return None
        wire = self.cache.get((b"T" if tcp else b"U") + data[2:])
        if wire is None:
            return None
        return data[:2] + wire[2:]

    async def answer(self, data: bytes, tcp: bool, source: str = "") -> bytes | None:
        """The response to one request's bytes; None to stay silent. `source` is the client's
        IP (prepared queries with `Near: "_ip"` sort by it). Timed as consul.dns.ptr_query for
        a reverse lookup (Consul answers those in a handler of its own), else
        consul.dns.domain_query."""
        start = time.perf_counter()
        try:
            return await self._answer(data, tcp, source)
        finally:
            name = "dns.ptr_query" if is_reverse_query(data) else "dns.domain_query"
            METRICS.measure_since(name, start, self._metric_labels)

    async def _answer(self, data: bytes, tcp: bool, source: str) -> bytes | None:
        hit = self.cached(data, tcp)
        if hit is not None:
            return hit
        if len(data) < _HEADER or data[2] & 0x80:  # no header, or a response (no loops)
            return None
        try:
            request = dns.message.from_wire(data, ignore_trailing=True)
        except dns.message.ShortHeader:
            return None
        except (dns.exception.DNSException, ValueError, UnicodeError, IndexError):
            return _error(data, dns.rcode.FORMERR)
        generation = self.watch.generation
        try:
            plan = await self.responder.resolve(request, tcp=tcp, source=source)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("dns lookup failed", error=str(exc))
            return _error(data, dns.rcode.SERVFAIL, ra=bool(self.recursors))
        payload = request.payload if request.edns >= 0 else None

        def encode_plan(p: Plan) -> bytes:
            return fit(
                p.render(),
                tcp=tcp,
                edns_payload=payload,
                udp_answer_limit=self.settings.udp_answer_limit,
                enable_truncate=self.settings.enable_truncate,
                compress=not self.settings.disable_compression,
            )

        wire = encode_plan(plan)
        self.cache.put((b"T" if tcp else b"U") + data[2:], generation, plan, encode_plan, wire)
        return wire

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(
        self, transport: asyncio.DatagramTransport, data: bytes, addr: Any
    ) -> None:
        wire = await self.answer(data, tcp=False, source=str(addr[0]))
        if wire is not None and not transport.is_closing():
            transport.sendto(wire, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else ""
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                    size = int.from_bytes(head, "big")
                    data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_TIMEOUT)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                wire = await self.answer(data, tcp=True, source=source)
                if wire is None:
                    return
                aio.write(writer, len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        hit = self.server.cached(data, False)
        if hit is not None:
            self.transport.sendto(hit, addr)
            return
        if len(self.server._tasks) < MAX_PENDING:
            self.server._spawn(self.server._answer_udp(self.transport, data, addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("dns udp error", error=str(exc))


def _error(data: bytes, rcode: int, *, ra: bool = False) -> bytes:
    """A header-only reply with the request's ID (the question may be what failed to parse)."""
    request_id = int.from_bytes(data[:2], "big")
    flags = dns.flags.QR | dns.rcode.to_flags(rcode)[0] | (data[2] << 8 & dns.flags.RD)
    if ra:
        flags |= dns.flags.RA
    return encode(Draft(id=request_id, flags=flags, question=None), compress=True)
