"""DNS test support: an agent with the spec's example catalog, a dnspython client, and a tiny
recursor the test runs itself on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from consulpy.testing import DevAgent

# spec 9.1: nodes n1..n3 and the instances (check status per instance).
NODES = {
    "n1": ("10.0.0.1", {"env": "prod", "rfc1035-note": "rack 4"}),
    "n2": ("10.0.0.2", {}),
    "n3": ("2001:db8::3", {}),
}
INSTANCES = [
    # id, node, service, tags, port, service address, status
    ("web-1", "n1", "web", ["v1"], 8080, "", "passing"),
    ("web-2", "n2", "web", ["v2"], 8081, "10.0.1.2", "passing"),
    ("web-3", "n3", "web", ["v1", "v2"], 8082, "", "warning"),
    ("web-4", "n2", "web", ["v1"], 8083, "", "critical"),
    ("db-1", "n1", "db", ["primary"], 5432, "", "passing"),
    ("ext-1", "n2", "ext", [], 443, "api.example.com", "passing"),
    ("cache-1", "n3", "cache", [], 6379, "", "critical"),
]


async def register(dev: DevAgent, body: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.put(dev.url + "/v1/catalog/register", data=json.dumps(body)) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def load_catalog(dev: DevAgent, extra_web: int = 0) -> None:
    for iid, node, service, tags, port, address, status in INSTANCES:
        node_addr, meta = NODES[node]
        await register(
            dev,
            {
                "Node": node,
                "Address": node_addr,
                "NodeMeta": meta,
                "Service": {
                    "ID": iid,
                    "Service": service,
                    "Tags": tags,
                    "Port": port,
                    "Address": address,
                },
                "Check": {
                    "CheckID": f"check-{iid}",
                    "Name": f"check {iid}",
                    "Status": status,
                    "ServiceID": iid,
                },
            },
        )
    for i in range(5, 5 + extra_web):
        await register(
            dev,
            {
                "Node": f"x{i}",
                "Address": f"10.0.2.{i}",
                "Service": {"ID": f"web-{i}", "Service": "web", "Port": 9000 + i},
                "Check": {
                    "CheckID": f"check-web-{i}",
                    "Name": "c",
                    "Status": "passing",
                    "ServiceID": f"web-{i}",
                },
            },
        )


@contextlib.asynccontextmanager
async def dns_agent(
    config: dict[str, Any] | None = None,
    flags: tuple[str, ...] = (),
    extra_web: int = 0,
    catalog: bool = True,
) -> AsyncIterator[Client]:
    """A dev agent with DNS on a free port, loaded with the example catalog."""
    async with DevAgent(flags=("-dns-port=0", *flags), config=config) as dev:
        if catalog:
            await load_catalog(dev, extra_web)
        assert dev.agent is not None
        host, port = dev.agent.dns_addresses[0]
        yield Client(host, port, dev)


class Client:
    def __init__(self, host: str, port: int, dev: DevAgent) -> None:
        self.host = host
        self.port = port
        self.dev = dev

    async def ask(
        self,
        name: str,
        rdtype: str | int = "A",
        *,
        tcp: bool = False,
        payload: int | None = None,
    ) -> dns.message.Message:
        if payload:
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=payload)
        else:
            query = dns.message.make_query(name, rdtype)  # no EDNS: the 512-byte rules
        if tcp:
            return await dns.asyncquery.tcp(query, self.host, port=self.port, timeout=5)
        return await dns.asyncquery.udp(query, self.host, port=self.port, timeout=5)

    async def raw_udp(self, data: bytes, timeout: float = 2.0) -> bytes | None:
        """Send bytes; the reply's bytes, or None when nothing came back in time."""
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes] = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                if not got.done():
                    got.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(
            Proto, remote_addr=(self.host, self.port)
        )
        try:
            transport.sendto(data)
            try:
                return await asyncio.wait_for(got, timeout)
            except TimeoutError:
                return None
        finally:
            transport.close()


def rdatas(section: list[dns.rrset.RRset], rdtype: str | None = None) -> set[str]:
    """`TYPE text` for every record of a section (optionally of one type), as a set."""
    out = set()
    for rrset in section:
        kind = dns.rdatatype.to_text(rrset.rdtype)
        if rdtype is not None and kind != rdtype:
            continue
        for rdata in rrset:
            out.add(f"{kind} {rdata.to_text()}")
    return out


def owned(section: list[dns.rrset.RRset], rdtype: str | None = None) -> set[str]:
    """`owner TYPE text`, owners lower-cased (clients compare names case-insensitively)."""
    out = set()
    for rrset in section:
        kind = dns.rdatatype.to_text(rrset.rdtype)
        if rdtype is not None and kind != rdtype:
            continue
        for rdata in rrset:
            out.add(f"{rrset.name.to_text().lower()} {kind} {rdata.to_text()}")
    return out


def count(section: list[dns.rrset.RRset]) -> int:
    return sum(len(rrset) for rrset in section)


def ttls(section: list[dns.rrset.RRset]) -> set[int]:
    return {rrset.ttl for rrset in section}


def is_nxdomain_soa(resp: dns.message.Message, zone: str = "consul.") -> bool:
    return (
        resp.rcode() == dns.rcode.NXDOMAIN
        and not resp.answer
        and any(
            r.rdtype == dns.rdatatype.SOA and r.name.to_text().lower() == zone
            for r in resp.authority
        )
    )


def aa(resp: dns.message.Message) -> bool:
    return bool(resp.flags & dns.flags.AA)


def ra(resp: dns.message.Message) -> bool:
    return bool(resp.flags & dns.flags.RA)


class StubResolver:
    """A tiny authoritative server on 127.0.0.1 (UDP and TCP) for recursor tests.

    `records` maps (name, type) to rdata texts. With `truncate_udp` every UDP answer comes
    back empty with TC set, so the client must retry over TCP. `rcode` forces an error.
    """

    def __init__(
        self,
        records: dict[tuple[str, str], list[str]],
        *,
        truncate_udp: bool = False,
        rcode: int = dns.rcode.NOERROR,
    ) -> None:
        self.records = records
        self.truncate_udp = truncate_udp
        self.rcode = rcode
        self.udp_queries = 0
        self.tcp_queries = 0
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def reply(self, data: bytes, tcp: bool) -> bytes:
        query = dns.message.from_wire(data)
        resp = dns.message.make_response(query)
        resp.set_rcode(self.rcode)
        if not tcp and self.truncate_udp:
            resp.flags |= dns.flags.TC
            return resp.to_wire()
        q = query.question[0]
        key = (q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype))
        texts = self.records.get(key)
        if texts:
            resp.answer.append(dns.rrset.from_text_list(q.name, 30, "IN", q.rdtype, texts))
        elif self.rcode == dns.rcode.NOERROR:
            resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp.to_wire()

    async def start(self) -> StubResolver:
        loop = asyncio.get_running_loop()
        stub = self

        class UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                stub.udp_queries += 1
                self.transport.sendto(stub.reply(data, False), addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                    stub.tcp_queries += 1
                    wire = stub.reply(data, True)
                    writer.write(len(wire).to_bytes(2, "big") + wire)
                    await writer.drain()
            writer.close()

        for _ in range(20):
            udp, _ = await loop.create_datagram_endpoint(UDP, local_addr=("127.0.0.1", 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(tcp, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp = udp  # type: ignore[assignment]
            self.port = port
            return self
        raise OSError("no free port for the stub resolver")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def dead_port() -> int:
    """A UDP port nothing listens on (queries there time out or get ICMP refused)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
