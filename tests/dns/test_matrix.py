"""The spec's DNS test matrix (section 9.2) against one agent with the example catalog.

Prepared-query rows (D32-D36) are in test_prepared_queries.py, with the HTTP cases H1-H18.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.rcode
import pytest
import pytest_asyncio

from tests.dns.support import Client, aa, count, dns_agent, is_nxdomain_soa, owned, ra, rdatas

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[Client]:
    async with dns_agent() as c:
        yield c


async def test_d1_node_a_with_meta_txt_in_additional(client: Client) -> None:
    resp = await client.ask("n1.node.consul", "A")
    assert resp.rcode() == dns.rcode.NOERROR and aa(resp) and not ra(resp)
    assert owned(resp.answer) == {"n1.node.consul. A 10.0.0.1"}
    assert owned(resp.additional) == {
        'n1.node.consul. TXT "env=prod"',
        'n1.node.consul. TXT "rack 4"',
    }
    assert {r.ttl for r in resp.answer} == {0}


async def test_d2_node_txt(client: Client) -> None:
    resp = await client.ask("n1.node.dc1.consul", "TXT")
    assert rdatas(resp.answer) == {'TXT "env=prod"', 'TXT "rack 4"'}


async def test_d3_case_insensitive_any(client: Client) -> None:
    resp = await client.ask("N1.Node.CONSUL", "ANY")
    assert rdatas(resp.answer) == {"A 10.0.0.1", 'TXT "env=prod"', 'TXT "rack 4"'}


async def test_d4_d5_node_families(client: Client) -> None:
    resp = await client.ask("n3.node.consul", "AAAA")
    assert rdatas(resp.answer) == {"AAAA 2001:db8::3"}
    resp = await client.ask("n3.node.consul", "A")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer


async def test_d6_unknown_node(client: Client) -> None:
    resp = await client.ask("nope.node.consul", "A")
    assert is_nxdomain_soa(resp) and aa(resp)
    soa = resp.authority[0]
    assert soa.ttl == 0
    fields = soa[0]
    assert (fields.mname.to_text(), fields.rname.to_text()) == ("ns.consul.", "hostmaster.consul.")
    assert (fields.refresh, fields.retry, fields.expire, fields.minimum) == (3600, 600, 86400, 0)


async def test_d7_d8_d9_service_addresses(client: Client) -> None:
    resp = await client.ask("web.service.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}
    resp = await client.ask("web.service.consul", "AAAA")
    assert rdatas(resp.answer) == {"AAAA 2001:db8::3"}
    resp = await client.ask("web.service.consul", "ANY", tcp=True)
    assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2", "AAAA 2001:db8::3"}


D10_SRV = {
    "SRV 1 1 8080 n1.node.dc1.consul.",
    "SRV 1 1 8081 0a000102.addr.dc1.consul.",
    "SRV 1 1 8082 n3.node.dc1.consul.",
}
D10_ADDITIONAL = {
    "n1.node.dc1.consul. A 10.0.0.1",
    "0a000102.addr.dc1.consul. A 10.0.1.2",
    "n3.node.dc1.consul. AAAA 2001:db8::3",
    'n1.node.dc1.consul. TXT "env=prod"',
    'n1.node.dc1.consul. TXT "rack 4"',
}


async def test_d10_srv_with_additional(client: Client) -> None:
    resp = await client.ask("web.service.consul", "SRV", payload=4096)
    assert rdatas(resp.answer) == D10_SRV
    assert owned(resp.additional) == D10_ADDITIONAL


async def test_d11_d12_d13_tags(client: Client) -> None:
    resp = await client.ask("v1.web.service.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1"}
    want = {"SRV 1 1 8081 0a000102.addr.dc1.consul.", "SRV 1 1 8082 n3.node.dc1.consul."}
    resp = await client.ask("V2.WEB.service.consul", "SRV")
    assert rdatas(resp.answer) == want
    resp = await client.ask("_web._v2.service.consul", "SRV")
    assert rdatas(resp.answer) == want


async def test_d14_rfc2782_tcp_means_no_filter(client: Client) -> None:
    for name in ("_web._tcp.service.consul", "_web._tcp.consul"):
        resp = await client.ask(name, "SRV", payload=4096)
        assert rdatas(resp.answer) == D10_SRV, name


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("a.b.web.service.consul", "A"),  # D15
        ("web.service.dc2.consul", "A"),  # D16
        ("cache.service.consul", "A"),  # D17: every instance critical
        ("nope.service.consul", "SRV"),  # D18
        ("consul", "A"),  # D31
        ("foo.bar.consul", "A"),
        ("service.consul", "SRV"),
        ("zz000001.addr.dc1.consul", "A"),  # D25
    ],
)
async def test_nxdomain_with_soa(client: Client, name: str, rdtype: str) -> None:
    resp = await client.ask(name, rdtype)
    assert is_nxdomain_soa(resp), resp
    assert aa(resp)


async def test_d19_nodata(client: Client) -> None:
    resp = await client.ask("db.service.consul", "AAAA")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
    assert rdatas(resp.authority, "SOA")


async def test_d20_d22_hostname_service_without_recursors(client: Client) -> None:
    resp = await client.ask("ext.service.consul", "A")
    assert owned(resp.answer) == {"ext.service.consul. CNAME api.example.com."}
    resp = await client.ask("ext.service.consul", "SRV")
    assert rdatas(resp.answer) == {"SRV 1 1 443 api.example.com."}
    assert not rdatas(resp.additional, "A")


async def test_d23_d24_addr(client: Client) -> None:
    resp = await client.ask("0a000001.addr.dc1.consul", "A")
    assert owned(resp.answer) == {"0a000001.addr.dc1.consul. A 10.0.0.1"}
    resp = await client.ask("20010db8000000000000000000000003.addr.dc1.consul", "AAAA")
    assert rdatas(resp.answer) == {"AAAA 2001:db8::3"}
    # The wrong family: the record goes to additional, NOERROR with an empty answer.
    resp = await client.ask("0a000001.addr.dc1.consul", "AAAA")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
    assert rdatas(resp.additional) == {"A 10.0.0.1"}


async def test_d26_d27_d28_ptr(client: Client) -> None:
    resp = await client.ask("1.0.0.10.in-addr.arpa", "PTR")
    assert rdatas(resp.answer) == {"PTR n1.node.dc1.consul."}
    assert {r.ttl for r in resp.answer} == {0}
    resp = await client.ask("2.1.0.10.in-addr.arpa", "PTR")
    assert rdatas(resp.answer) == {"PTR web.service.dc1.consul."}
    v6 = ".".join(reversed("20010db8000000000000000000000003")) + ".ip6.arpa"
    resp = await client.ask(v6, "PTR")
    assert rdatas(resp.answer) == {"PTR n3.node.dc1.consul."}
    resp = await client.ask("9.9.9.10.in-addr.arpa", "PTR")
    assert is_nxdomain_soa(resp)


async def test_d29_d30_soa_and_ns(client: Client) -> None:
    node = client.dev.agent.node_name  # type: ignore[union-attr]
    ns = f"NS {node}.node.dc1.consul."
    resp = await client.ask("consul", "SOA")
    assert len(rdatas(resp.answer, "SOA")) == 1
    assert rdatas(resp.authority) == {ns}
    assert owned(resp.additional) == {f"{node}.node.dc1.consul. A 127.0.0.1"}
    for name in ("consul", "web.service.consul"):
        resp = await client.ask(name, "NS")
        assert owned(resp.answer) == {f"consul. {ns}"}
        assert rdatas(resp.additional) == {"A 127.0.0.1"}


async def test_d37_outside_the_domain_without_recursors(client: Client) -> None:
    resp = await client.ask("example.com", "A")
    assert resp.rcode() == dns.rcode.REFUSED and not aa(resp) and count(resp.answer) == 0
