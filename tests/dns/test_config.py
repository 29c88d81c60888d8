"""dns_config and transport cases (spec section 9.3) and the truncation rules (section 6)."""

from __future__ import annotations

import json

import aiohttp
import dns.flags
import dns.rcode

from tests.dns.support import dns_agent, is_nxdomain_soa, owned, rdatas, register


def tc(resp: object) -> bool:
    return bool(resp.flags & dns.flags.TC)  # type: ignore[attr-defined]


async def test_c1_c3_udp_answer_limit_and_edns() -> None:
    async with dns_agent(extra_web=10) as c:
        resp = await c.ask("web.service.consul", "A")
        assert len(resp.answer[0]) == 3 and not tc(resp)  # C1: silent cut
        resp = await c.ask("web.service.consul", "A", tcp=True)
        assert len(rdatas(resp.answer)) == 12  # C3 over TCP
        resp = await c.ask("web.service.consul", "A", payload=4096)
        assert len(rdatas(resp.answer)) == 12
        assert resp.edns == 0 and resp.payload == 4096  # OPT echoed with the client's size


async def test_c2_enable_truncate_sets_tc() -> None:
    async with dns_agent({"dns_config": {"enable_truncate": True}}, extra_web=10) as c:
        resp = await c.ask("web.service.consul", "A")
        assert len(resp.answer[0]) == 3 and tc(resp)
        resp = await c.ask("web.service.consul", "A", tcp=True)
        assert len(rdatas(resp.answer)) == 12 and not tc(resp)
        resp = await c.ask("db.service.consul", "A")  # nothing cut: no TC
        assert not tc(resp)


async def test_c4_a_record_limit() -> None:
    async with dns_agent({"dns_config": {"a_record_limit": 1}}, extra_web=10) as c:
        resp = await c.ask("web.service.consul", "A", tcp=True)
        assert len(rdatas(resp.answer)) == 1
        resp = await c.ask("web.service.consul", "SRV", tcp=True)
        assert len(rdatas(resp.answer)) == 13


async def test_c5_udp_answer_limit_zero() -> None:
    async with dns_agent({"dns_config": {"udp_answer_limit": 0}}) as c:
        resp = await c.ask("web.service.consul", "A")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer


async def test_c6_ttls() -> None:
    ttls = {"web": "5s", "w*": "7s", "*": "1s"}
    config = {"dns_config": {"service_ttl": ttls, "node_ttl": "30s"}}
    async with dns_agent(config) as c:
        resp = await c.ask("web.service.consul", "SRV", payload=4096)
        assert {r.ttl for r in resp.answer + resp.additional} == {5}
        resp = await c.ask("db.service.consul", "A")
        assert {r.ttl for r in resp.answer} == {1}
        resp = await c.ask("n1.node.consul", "A")
        assert {r.ttl for r in resp.answer + resp.additional} == {30}
        resp = await c.ask("0a000001.addr.consul", "A")
        assert {r.ttl for r in resp.answer} == {30}
        # Prepared queries: their own DNS.TTL, else service_ttl of the executed service.
        for body in (
            {"Name": "web-v1", "Service": {"Service": "web"}, "DNS": {"TTL": "10s"}},
            {"Name": "plain-db", "Service": {"Service": "db"}},
        ):
            async with (
                aiohttp.ClientSession() as http,
                http.post(c.dev.url + "/v1/query", data=json.dumps(body)) as created,
            ):
                assert created.status == 200, await created.text()
        resp = await c.ask("web-v1.query.consul", "A")
        assert {r.ttl for r in resp.answer} == {10}
        resp = await c.ask("plain-db.query.consul", "A")
        assert {r.ttl for r in resp.answer} == {1}


async def test_service_ttl_wildcards_prefer_longest_prefix() -> None:
    config = {"dns_config": {"service_ttl": {"w*": "7s", "we*": "8s", "*": "1s"}}}
    async with dns_agent(config) as c:
        resp = await c.ask("web.service.consul", "A")
        assert {r.ttl for r in resp.answer} == {8}


async def test_c7_only_passing() -> None:
    async with dns_agent({"dns_config": {"only_passing": True}}) as c:
        resp = await c.ask("web.service.consul", "AAAA")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer and resp.authority
        resp = await c.ask("web.service.consul", "ANY")
        assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}


async def test_c8_no_additional_node_meta() -> None:
    async with dns_agent({"dns_config": {"enable_additional_node_meta_txt": False}}) as c:
        resp = await c.ask("n1.node.consul", "A")
        assert rdatas(resp.answer) == {"A 10.0.0.1"} and not resp.additional
        resp = await c.ask("n1.node.dc1.consul", "TXT")
        assert rdatas(resp.answer) == {'TXT "env=prod"', 'TXT "rack 4"'}


async def test_c9_alt_domain() -> None:
    async with dns_agent(flags=("-alt-domain=test-domain",)) as c:
        resp = await c.ask("web.service.test-domain", "SRV", payload=4096)
        assert rdatas(resp.answer) == {
            "SRV 1 1 8080 n1.node.dc1.test-domain.",
            "SRV 1 1 8081 0a000102.addr.dc1.test-domain.",
            "SRV 1 1 8082 n3.node.dc1.test-domain.",
        }
        resp = await c.ask("nope.node.test-domain", "A")
        assert is_nxdomain_soa(resp, "test-domain.")
        resp = await c.ask("1.0.0.10.in-addr.arpa", "PTR")
        assert rdatas(resp.answer) == {"PTR n1.node.dc1.consul."}
        resp = await c.ask("web.service.consul", "A")  # the primary domain still answers
        assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}


async def test_domain_flag() -> None:
    async with dns_agent(flags=("-domain=Example.Internal",)) as c:
        resp = await c.ask("web.service.example.internal", "A")
        assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}
        resp = await c.ask("web.service.consul", "A")  # no longer ours, no recursors
        assert resp.rcode() == dns.rcode.REFUSED


async def test_c10_soa_settings() -> None:
    async with dns_agent({"dns_config": {"soa": {"min_ttl": 60, "refresh": 100}}}) as c:
        resp = await c.ask("nope.node.consul", "A")
        soa = resp.authority[0]
        assert soa.ttl == 60
        assert (soa[0].refresh, soa[0].minimum, soa[0].retry) == (100, 60, 600)


async def test_c11_node_check_critical_hides_instances_and_cache_follows() -> None:
    async with dns_agent() as c:
        resp = await c.ask("web.service.consul", "A")
        assert rdatas(resp.answer) == {"A 10.0.0.1", "A 10.0.1.2"}
        await register(
            c.dev,
            {
                "Node": "n1",
                "Address": "10.0.0.1",
                "NodeMeta": {"env": "prod", "rfc1035-note": "rack 4"},
                "Check": {"CheckID": "node-down", "Name": "node", "Status": "critical"},
            },
        )

        from tests.helpers import eventually

        async def only_web2() -> bool:
            r = await c.ask("web.service.consul", "A")
            return rdatas(r.answer) == {"A 10.0.1.2"}

        await eventually(only_web2, timeout=5, what="the critical node leaves the answers")


async def test_disable_compression_makes_bigger_messages() -> None:
    off = {"dns_config": {"disable_compression": True}}
    async with dns_agent() as plain, dns_agent(off) as raw:
        small = await plain.ask("web.service.consul", "SRV", payload=4096)
        big = await raw.ask("web.service.consul", "SRV", payload=4096)
        assert rdatas(small.answer) == rdatas(big.answer)
        assert len(big.wire) > len(small.wire)  # type: ignore[attr-defined]


async def test_large_srv_sets_udp_tcp_edns() -> None:
    async with dns_agent(extra_web=60) as c:
        resp = await c.ask("web.service.consul", "SRV")
        assert 1 <= len(rdatas(resp.answer)) <= 3
        assert len(resp.wire) <= 512  # type: ignore[attr-defined]
        resp = await c.ask("web.service.consul", "SRV", tcp=True)
        assert len(rdatas(resp.answer)) == 63
        resp = await c.ask("web.service.consul", "SRV", payload=1232)
        assert 3 < len(rdatas(resp.answer)) < 63
        assert len(resp.wire) <= 1232  # type: ignore[attr-defined]
        # After a cut, additional keeps one address per remaining SRV target.
        targets = {r.target.to_text().lower() for rr in resp.answer for r in rr}
        assert {o.split()[0] for o in owned(resp.additional)} <= targets
        resp = await c.ask("web.service.consul", "A", payload=8192)
        assert len(rdatas(resp.answer)) == 62  # 10.0.1.2 and 60 + web-1's 10.0.0.1


async def test_udp_without_edns_stays_under_512_bytes() -> None:
    async with dns_agent({"dns_config": {"udp_answer_limit": 8}}, extra_web=60) as c:
        resp = await c.ask("web.service.consul", "SRV")
        assert len(resp.wire) <= 512  # type: ignore[attr-defined]
        assert 1 <= len(rdatas(resp.answer)) <= 8


async def test_reload_applies_new_settings() -> None:
    from consulpy.config import load_agent_config

    async with dns_agent() as c:
        resp = await c.ask("n1.node.consul", "A")
        assert {r.ttl for r in resp.answer} == {0}
        new = load_agent_config(
            ["-dev", "-node=consulpy-test"], [{"dns_config": {"node_ttl": "42s"}}]
        )
        agent = c.dev.agent
        assert agent is not None
        agent.reload_config = lambda: new  # what `consulpy reload` re-reads
        await agent.reload()
        resp = await c.ask("n1.node.consul", "A")
        assert {r.ttl for r in resp.answer} == {42}
