"""Names outside the Consul domains go to the recursors the test itself runs on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode

from tests.dns.support import StubResolver, aa, dns_agent, owned, ra, rdatas

RECORDS = {
    ("api.example.com.", "A"): ["192.0.2.7"],
    ("example.com.", "A"): ["192.0.2.1"],
    ("9.9.9.10.in-addr.arpa.", "PTR"): ["somewhere.example.com."],
}


@contextlib.asynccontextmanager
async def stubs(*resolvers: StubResolver) -> AsyncIterator[list[StubResolver]]:
    started = [await r.start() for r in resolvers]
    try:
        yield started
    finally:
        for r in started:
            await r.stop()


async def test_d21_hostname_resolved_through_the_recursor() -> None:
    async with (
        stubs(StubResolver(RECORDS)) as [stub],
        dns_agent(flags=(f"-recursor={stub.address}",)) as c,
    ):
        resp = await c.ask("ext.service.consul", "A")
        assert owned(resp.answer) == {
            "ext.service.consul. CNAME api.example.com.",
            "api.example.com. A 192.0.2.7",
        }
        assert {r.ttl for r in resp.answer} == {0}
        assert ra(resp) and aa(resp)
        resp = await c.ask("ext.service.consul", "SRV")
        assert rdatas(resp.answer) == {"SRV 1 1 443 api.example.com."}
        assert owned(resp.additional, "A") == {"api.example.com. A 192.0.2.7"}


async def test_forwarding_relays_answers_and_nxdomain() -> None:
    async with (
        stubs(StubResolver(RECORDS)) as [stub],
        dns_agent(flags=(f"-recursor={stub.address}",)) as c,
    ):
        resp = await c.ask("example.com", "A")
        assert resp.rcode() == dns.rcode.NOERROR and rdatas(resp.answer) == {"A 192.0.2.1"}
        assert ra(resp) and not aa(resp)
        resp = await c.ask("missing.example.com", "A")
        assert resp.rcode() == dns.rcode.NXDOMAIN and ra(resp)
        # A reverse name the catalog does not know goes to the recursors too.
        resp = await c.ask("9.9.9.10.in-addr.arpa", "PTR")
        assert rdatas(resp.answer) == {"PTR somewhere.example.com."}
        # In-domain answers carry RA when recursors exist.
        resp = await c.ask("web.service.consul", "A")
        assert ra(resp) and aa(resp)


async def test_sequential_moves_on_after_a_failing_recursor() -> None:
    async with (
        stubs(StubResolver(RECORDS, rcode=dns.rcode.SERVFAIL), StubResolver(RECORDS)) as [
            bad,
            good,
        ],
        dns_agent(flags=(f"-recursor={bad.address}", f"-recursor={good.address}")) as c,
    ):
        for _ in range(3):
            resp = await c.ask("example.com", "A")
            assert rdatas(resp.answer) == {"A 192.0.2.1"}
        assert bad.udp_queries == 3 and good.udp_queries == 3


async def test_random_strategy_spreads_queries() -> None:
    async with (
        stubs(StubResolver(RECORDS), StubResolver(RECORDS)) as [one, two],
        dns_agent(
            {"dns_config": {"recursor_strategy": "random"}},
            flags=(f"-recursor={one.address}", f"-recursor={two.address}"),
        ) as c,
    ):
        for _ in range(40):
            resp = await c.ask("example.com", "A")
            assert rdatas(resp.answer) == {"A 192.0.2.1"}
        assert one.udp_queries > 0 and two.udp_queries > 0
        assert one.udp_queries + two.udp_queries == 40


async def test_truncated_udp_reply_is_retried_over_tcp() -> None:
    async with (
        stubs(StubResolver(RECORDS, truncate_udp=True)) as [stub],
        dns_agent(flags=(f"-recursor={stub.address}",)) as c,
    ):
        resp = await c.ask("example.com", "A")
        assert rdatas(resp.answer) == {"A 192.0.2.1"}
        assert stub.udp_queries == 1 and stub.tcp_queries == 1
        # A client that asks over TCP is forwarded over TCP.
        resp = await c.ask("example.com", "A", tcp=True)
        assert rdatas(resp.answer) == {"A 192.0.2.1"}
        assert stub.udp_queries == 1 and stub.tcp_queries == 2


async def test_all_recursors_failing_gives_servfail() -> None:
    async with (
        stubs(StubResolver(RECORDS, rcode=dns.rcode.REFUSED)) as [bad],
        dns_agent(
            {"dns_config": {"recursor_timeout": "300ms"}},
            flags=(f"-recursor={bad.address}", "-recursor=127.0.0.1:1"),
        ) as c,
    ):
        resp = await c.ask("example.com", "A", payload=1400)
        assert resp.rcode() == dns.rcode.SERVFAIL and ra(resp)
        assert resp.question[0].name.to_text() == "example.com."
        assert resp.edns == 0  # OPT echoed


async def test_recursor_timeout_is_honoured() -> None:
    """A silent first recursor costs recursor_timeout (300ms here), well within the
    client's 1.5s; with the 2s default the client would give up first."""
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    silent_port = silent.get_extra_info("sockname")[1]
    try:
        async with (
            stubs(StubResolver(RECORDS)) as [good],
            dns_agent(
                {"dns_config": {"recursor_timeout": "300ms"}},
                flags=(f"-recursor=127.0.0.1:{silent_port}", f"-recursor={good.address}"),
            ) as c,
        ):
            query = dns.message.make_query("example.com", "A")
            resp = await dns.asyncquery.udp(query, c.host, port=c.port, timeout=1.5)
            assert rdatas(resp.answer) == {"A 192.0.2.1"}
    finally:
        silent.close()


async def test_no_recursors_refused_and_ptr_miss_nxdomain() -> None:
    async with dns_agent() as c:
        resp = await c.ask("example.com", "A")
        assert resp.rcode() == dns.rcode.REFUSED and not ra(resp)
        resp = await c.ask("9.9.9.10.in-addr.arpa", "PTR")
        assert resp.rcode() == dns.rcode.NXDOMAIN
