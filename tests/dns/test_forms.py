"""Name forms beyond the matrix: connect, virtual, ingress, unknown queries, node IDs,
node-meta TXT escaping, unit checks of the name grammar, and `dig` as an external client."""

from __future__ import annotations

import asyncio

import dns.rcode
import pytest

from consulpy.dns import names
from consulpy.dns.records import meta_txt
from consulpy.dns.settings import DNSSettings
from tests.dns.support import dns_agent, is_nxdomain_soa, owned, rdatas, register


async def test_connect_lookups_answer_with_the_proxies() -> None:
    async with dns_agent() as c:
        await register(
            c.dev,
            {
                "Node": "n2",
                "Address": "10.0.0.2",
                "Service": {
                    "ID": "web-1-sidecar",
                    "Service": "web-sidecar-proxy",
                    "Kind": "connect-proxy",
                    "Port": 21000,
                    "Proxy": {"DestinationServiceName": "web", "DestinationServiceID": "web-1"},
                },
            },
        )
        await register(
            c.dev,
            {
                "Node": "n1",
                "Address": "10.0.0.1",
                "NodeMeta": {"env": "prod"},
                "Service": {
                    "ID": "db-native",
                    "Service": "db",
                    "Port": 6000,
                    "Connect": {"Native": True},
                },
            },
        )
        resp = await c.ask("web.connect.consul", "SRV")
        assert rdatas(resp.answer) == {"SRV 1 1 21000 n2.node.dc1.consul."}
        resp = await c.ask("web.connect.consul", "A")
        assert rdatas(resp.answer) == {"A 10.0.0.2"}
        resp = await c.ask("db.connect.consul", "SRV")
        assert rdatas(resp.answer) == {"SRV 1 1 6000 n1.node.dc1.consul."}
        resp = await c.ask("cache.connect.consul", "A")
        assert is_nxdomain_soa(resp)


async def test_forms_that_do_not_exist_yet() -> None:
    async with dns_agent() as c:
        # No virtual IPs yet: Consul's answer for a service without one.
        resp = await c.ask("web.virtual.consul", "A")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer and not resp.authority
        # No ingress gateway exposes web, and no prepared query defined: unknown names.
        for name in ("web.ingress.consul", "web-v1.query.consul", "_web._tcp.query.consul"):
            resp = await c.ask(name, "A" if "_" not in name else "SRV")
            assert is_nxdomain_soa(resp), name


async def test_localities() -> None:
    async with dns_agent() as c:
        for name in (
            "web.service.dc1.consul",
            "web.service.default.dc1.consul",
            "web.service.dc1.dc.consul",
            "web.service.default.ns.dc1.dc.consul",
            "web.service.default.ap.consul",
        ):
            resp = await c.ask(name, "A")
            assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}, name
        for name in (
            "web.service.other.ns.consul",
            "web.service.p.peer.consul",
            "web.service.g.sg.consul",
            "web.service.a.b.c.consul",
            "web.service.dc2.dc.consul",
        ):
            assert is_nxdomain_soa(await c.ask(name, "A")), name


async def test_node_by_id_prefix_and_dotted_names() -> None:
    async with dns_agent(catalog=False) as c:
        await register(
            c.dev,
            {
                "Node": "rack1.host7",
                "ID": "b2c4e6a8-0000-4000-8000-000000000001",
                "Address": "10.9.0.7",
            },
        )
        await register(
            c.dev,
            {"Node": "other", "ID": "b2c4e6a8-0000-4000-8000-000000000002", "Address": "10.9.0.8"},
        )
        resp = await c.ask("rack1.host7.node.consul", "A")
        assert rdatas(resp.answer) == {"A 10.9.0.7"}
        resp = await c.ask("b2c4e6a8-0000-4000-8000-000000000002.node.consul", "A")
        assert rdatas(resp.answer) == {"A 10.9.0.8"}
        assert is_nxdomain_soa(await c.ask("b2c4.node.consul", "A"))  # ambiguous prefix


async def test_hostname_service_inside_the_domain_resolves_internally() -> None:
    async with dns_agent() as c:
        await register(
            c.dev,
            {
                "Node": "n2",
                "Address": "10.0.0.2",
                "Service": {"ID": "alias-1", "Service": "alias", "Address": "db.service.consul"},
            },
        )
        resp = await c.ask("alias.service.consul", "A")
        assert owned(resp.answer) == {
            "alias.service.consul. CNAME db.service.consul.",
            "db.service.consul. A 10.0.0.1",
        }


def test_meta_txt_escaping() -> None:
    import dns.name

    name = dns.name.from_text("n.node.consul.")
    texts = {
        r[0].strings[0].decode()
        for r in meta_txt(name, 0, {" a=b` ": "x`y", "RFC1035-raw": "only value", "k": ""})
    }
    assert texts == {"` a`=b``` =x``y", "only value", "k="}


def test_name_grammar() -> None:
    p = names.parse(("v1", "web", "service"), "consul.", srv=False)
    assert (p.kind, p.parts, p.datacenter) == ("service", ("v1", "web"), None)
    p = names.parse(("_web", "_tcp"), "consul.", srv=True)
    assert (p.kind, p.parts) == ("service", ("_web", "_tcp"))
    with pytest.raises(names.Invalid):
        names.parse(("_web", "_tcp"), "consul.", srv=False)
    with pytest.raises(names.Invalid):
        names.parse(("x", "0a000001", "addr"), "consul.", srv=False)
    assert names.parse(("web", "service", "dc3"), "consul.", srv=False).datacenter == "dc3"
    assert names.hex_address("0a000102") == "10.0.1.2"
    assert names.hex_address("20010db8000000000000000000000003") == "2001:db8::3"
    assert names.hex_address("0a0001") is None and names.hex_address("zz000001") is None
    assert names.ptr_address(("1", "0", "0", "10", "in-addr", "arpa")) == "10.0.0.1"
    assert names.zone_of(("a", "b", "consul"), ("consul.", "b.consul.")) == ("b.consul.", ("a",))


def test_service_ttl_lookup() -> None:
    s = DNSSettings(service_ttl={"web": 5, "w*": 7, "*": 1, "Db": 9})
    assert s.service_ttl_for("web") == 5
    assert s.service_ttl_for("wx") == 7
    assert s.service_ttl_for("db") == 1  # keys are matched against lower-cased names only


# ------------------------------------------------------------------ dig


async def dig(port: int, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "dig",
        "@127.0.0.1",
        "-p",
        str(port),
        "+time=3",
        "+tries=1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_dig_srv_a_any_soa_and_ptr() -> None:
    async with dns_agent() as c:
        out = await dig(c.port, "web.service.consul", "SRV")
        assert "status: NOERROR" in out and "flags: qr aa rd;" in out
        for line in ("8080 n1.node.dc1.consul.", "8081 0a000102.addr.dc1.consul."):
            assert line in out
        assert "n3.node.dc1.consul.\t0\tIN\tAAAA\t2001:db8::3" in out
        out = await dig(c.port, "+short", "web.service.consul")
        assert set(out.split()) == {"10.0.0.1", "10.0.1.2"}
        out = await dig(c.port, "n1.node.consul", "ANY")
        assert '"env=prod"' in out and "10.0.0.1" in out
        out = await dig(c.port, "consul", "SOA")
        assert "ns.consul. hostmaster.consul." in out
        out = await dig(c.port, "+short", "-x", "10.0.0.1")
        assert out.strip() == "n1.node.dc1.consul."
        out = await dig(c.port, "nope.service.consul")
        assert "status: NXDOMAIN" in out


async def test_dig_tcp_noedns_and_bufsize() -> None:
    async with dns_agent(extra_web=10) as c:
        out = await dig(c.port, "+short", "+noedns", "web.service.consul")
        assert len(out.split()) == 3
        out = await dig(c.port, "+short", "+tcp", "web.service.consul")
        assert len(out.split()) == 12
        out = await dig(c.port, "+bufsize=4096", "web.service.consul")
        assert "udp: 4096" in out and out.count("\tIN\tA\t") == 12
