"""End to end: ingress and terminating gateways as real Envoys over the agent's ADS server.

One dev agent and one set of processes serve every assertion (one cluster for the file):

- `web` (a tiny HTTP app with an Envoy sidecar) is exposed by the ingress gateway `ingress`
  on an HTTP listener (routed by Host, `web.ingress.*`), on a TCP listener, on an HTTP
  listener exposing `*`, on an HTTPS listener (a Connect CA certificate for
  `*.ingress.consul`) and on a TLS 1.2 listener limited to one cipher suite;
- `ext` is a plain HTTP server registered as a service without a sidecar, linked to the
  terminating gateway `term`; `client` (with a sidecar) reaches it through its upstream, and
  a deny intention `client -> ext` refuses it at the gateway; then the entry links `*`
  (every typical service) instead, and `ext` is still reached through it.
Both gateways are registered and started with `consulpy connect envoy -gateway=... -register`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest_asyncio
from aiohttp import web

from consulpy.util.ports import addr_in_use, aretry_on_addr_in_use
from tests.helpers import eventually
from tests.mesh.harness import (
    AgentProc,
    ApiApp,
    Gateway,
    Sidecar,
    free_ports,
    service_file,
    web_app,
)
from tests.xds.mesh import start_app

DEADLINE = 60.0


@dataclass
class Gateways:
    tmp: Path
    agent: AgentProc
    http_port: int  # the ingress gateway's HTTP listener
    wildcard_port: int  # its HTTP listener exposing "*"
    tcp_port: int  # the ingress gateway's TCP listener
    tls_port: int  # its HTTPS listener
    suites_port: int  # a TLS 1.2 listener with one cipher suite
    client_port: int  # the `client` app: /call goes to ext through the terminating gateway
    dns_port: int
    envoys: dict[str, Sidecar] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)

    async def get(self, url: str, host: str = "") -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=10)
        headers = {"Host": host} if host else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers) as resp,
            ):
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, repr(exc)

    async def via_ingress_http(self, host: str = "web.ingress.consul") -> tuple[int, str]:
        return await self.get(f"http://127.0.0.1:{self.http_port}/hello", host)

    async def via_wildcard(self) -> tuple[int, str]:
        return await self.get(f"http://127.0.0.1:{self.wildcard_port}/hello", "web.ingress.x")

    async def via_ingress_tcp(self) -> tuple[int, str]:
        return await self.get(f"http://127.0.0.1:{self.tcp_port}/hello")

    async def via_terminating(self) -> tuple[int, str]:
        return await self.get(f"http://127.0.0.1:{self.client_port}/call")

    async def start(self, envoy: Sidecar) -> None:
        self.envoys[envoy.service_id] = envoy
        await envoy.start()

    async def diagnose(self) -> str:
        out = [
            f"ingress http: {await self.via_ingress_http()}",
            f"ingress tcp: {await self.via_ingress_tcp()}",
            f"terminating: {await self.via_terminating()}",
        ]
        for sid, envoy in self.envoys.items():
            out.append(f"--- {sid} clusters:\n{await envoy.get('/clusters')}")
            out.append(f"--- {sid} listeners:\n{await envoy.get('/listeners')}")
            out.append(f"--- {sid} logs:\n{envoy.logs()}")
        out.append(f"--- agent:\n{self.agent.output()[-6000:]}")
        return "\n".join(out)


def _entries(
    http_port: int, tcp_port: int, wildcard_port: int, tls_port: int, suites_port: int
) -> list[dict[str, object]]:
    return [
        {"kind": "service-defaults", "name": "web", "protocol": "http"},
        {
            "kind": "ingress-gateway",
            "name": "ingress",
            "listeners": [
                {
                    "port": http_port,
                    "protocol": "http",
                    "services": [{"name": "web", "request_headers": {"add": {"x-via": "ingress"}}}],
                },
                {"port": tcp_port, "protocol": "tcp", "services": [{"name": "web"}]},
                {"port": wildcard_port, "protocol": "http", "services": [{"name": "*"}]},
                # HTTPS with a Connect CA certificate for web.ingress.consul
                {
                    "port": tls_port,
                    "protocol": "http",
                    "tls": {"enabled": True, "tls_min_version": "TLSv1_2"},
                    "services": [{"name": "web"}],
                },
                # TLS 1.2 at most, one cipher suite (the CA's leaf keys are ECDSA)
                {
                    "port": suites_port,
                    "protocol": "tcp",
                    "tls": {
                        "enabled": True,
                        "tls_max_version": "TLSv1_2",
                        "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
                    },
                    "services": [{"name": "web"}],
                },
            ],
        },
        {"kind": "terminating-gateway", "name": "term", "services": [{"name": "ext"}]},
    ]


async def _tls_get(
    port: int, context: ssl.SSLContext, host: str
) -> tuple[int, str, tuple[str, str, int] | None]:
    """GET /hello over TLS to 127.0.0.1:port with SNI and Host `host`: status, body and the
    negotiated (cipher, version, bits)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host), 10
    )
    try:
        cipher = writer.get_extra_info("ssl_object").cipher()
        writer.write(f"GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace"), cipher


async def _peer_cert(port: int, context: ssl.SSLContext, host: str) -> dict[str, Any]:
    """The certificate the listener on `port` presents (verified against `context`)."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host), 10
    )
    try:
        return dict(writer.get_extra_info("peercert"))
    finally:
        writer.close()


async def _start(tmp: Path) -> Gateways:
    tmp.mkdir(parents=True)
    web_backend = ApiApp("web-1")
    web_runner, web_port = await start_app(web_backend.app)
    ext = ApiApp("ext-1")
    ext_runner, ext_port = await start_app(ext.app)
    http_port, tcp_port, wildcard_port, term_port, web_public, client_public = free_ports(6)
    upstream_port, dns_port, tls_port, suites_port = free_ports(4)
    client_runner, client_port = await start_app(web_app(upstream_port))
    config_dir = tmp / "config"
    config_dir.mkdir()
    (config_dir / "web.json").write_text(
        json.dumps(service_file("web", "web", web_port, web_public))
    )
    upstream = {"destination_name": "ext", "local_bind_port": upstream_port}
    (config_dir / "client.json").write_text(
        json.dumps(service_file("client", "client", client_port, client_public, [upstream]))
    )
    # ext: a plain server with no sidecar, known to the catalog by its address
    (config_dir / "ext.json").write_text(
        json.dumps({"service": {"name": "ext", "address": "127.0.0.1", "port": ext_port}})
    )
    (config_dir / "entries.json").write_text(
        json.dumps(
            {
                "config_entries": {
                    "bootstrap": _entries(http_port, tcp_port, wildcard_port, tls_port, suites_port)
                }
            }
        )
    )
    agent = AgentProc(tmp, config_dir, dns_port=dns_port)
    g = Gateways(
        tmp, agent, http_port, wildcard_port, tcp_port, tls_port, suites_port, client_port, dns_port
    )
    g.runners += [web_runner, ext_runner, client_runner]
    try:
        await agent.start()
        await g.start(Sidecar(tmp, "web", agent))
        await g.start(Sidecar(tmp, "client", agent))
        await g.start(Gateway(tmp, "ingress", "ingress", f"127.0.0.1:{http_port}", agent))
        await g.start(Gateway(tmp, "terminating", "term", f"127.0.0.1:{term_port}", agent))

        async def works() -> bool:
            for sid, envoy in g.envoys.items():
                if addr_in_use(envoy.logs()):
                    raise AssertionError(f"{sid}'s Envoy could not bind:\n{envoy.logs()}")
            http_ok = (await g.via_ingress_http())[0] == 200
            tcp_ok = (await g.via_ingress_tcp())[0] == 200
            wildcard_ok = (await g.via_wildcard())[0] == 200
            return http_ok and tcp_ok and wildcard_ok and (await g.via_terminating())[0] == 200

        try:
            await eventually(works, timeout=DEADLINE, what="traffic through both gateways")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await g.diagnose()}") from None
    except BaseException:
        await _stop(g)
        raise
    return g


async def _stop(g: Gateways) -> None:
    for envoy in g.envoys.values():
        await envoy.stop()
    await g.agent.stop()
    for runner in g.runners:
        await runner.cleanup()


@pytest_asyncio.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    attempts: list[Path] = []

    async def start() -> Gateways:
        attempts.append(tmp_path / f"attempt-{len(attempts) + 1}")
        return await _start(attempts[-1])

    g = await aretry_on_addr_in_use(start, lambda: None)
    try:
        yield g
    finally:
        await _stop(g)


async def test_ingress_and_terminating_gateways(gateways: Gateways) -> None:
    g = gateways
    # Ingress, HTTP listener: routed by Host to web (through web's sidecar, over mTLS)
    status, body = await g.via_ingress_http()
    assert status == 200, body
    echoed = json.loads(body)
    assert echoed["instance"] == "web-1"
    assert {k.lower(): v for k, v in echoed["headers"].items()}["x-via"] == "ingress"
    status, body = await g.via_ingress_http(f"web.ingress.consul:{g.http_port}")
    assert status == 200 and json.loads(body)["instance"] == "web-1", body
    status, body = await g.via_ingress_http("nope.ingress.consul")
    assert status == 404, (status, body)
    # Ingress, TCP listener: the same service, bytes proxied as they are
    status, body = await g.via_ingress_tcp()
    assert status == 200 and json.loads(body)["instance"] == "web-1", body
    # A listener exposing "*": every service, each under its own Host
    status, body = await g.via_wildcard()
    assert status == 200 and json.loads(body)["instance"] == "web-1", body

    # HTTPS: the certificate is the Connect CA's, for web.ingress.consul
    roots = await g.agent.request("GET", "/v1/connect/ca/roots")
    context = ssl.create_default_context(cadata="".join(r["RootCert"] for r in roots["Roots"]))

    async def https() -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(
                f"https://127.0.0.1:{g.tls_port}/hello",
                headers={"Host": "web.ingress.consul"},
                ssl=context,
                server_hostname="web.ingress.consul",
            ) as resp,
        ):
            return resp.status, await resp.text()

    status, body = await https()
    assert status == 200 and json.loads(body)["instance"] == "web-1", body
    # One certificate for every TLS listener, with Consul's wildcard DNS SANs
    cert = await _peer_cert(g.tls_port, context, "web.ingress.consul")
    sans = {value for kind, value in cert["subjectAltName"] if kind == "DNS"}
    assert {"*.ingress.consul", "*.ingress.dc1.consul"} <= sans, sans

    # The TLS 1.2 listener with one cipher suite: a client without it gets no handshake
    narrow = ssl.create_default_context(cadata="".join(r["RootCert"] for r in roots["Roots"]))
    narrow.maximum_version = ssl.TLSVersion.TLSv1_2
    narrow.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    try:
        await _peer_cert(g.suites_port, narrow, "web.ingress.consul")
    except (ssl.SSLError, ConnectionError) as exc:
        refused = repr(exc)
    else:
        refused = ""
    assert refused, "a client without the listener's cipher suite completed a handshake"
    wide = ssl.create_default_context(cadata="".join(r["RootCert"] for r in roots["Roots"]))
    wide.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    status, body, cipher = await _tls_get(g.suites_port, wide, "web.ingress.consul")
    assert status == 200 and json.loads(body)["instance"] == "web-1", body
    assert cipher[:2] == ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2"), cipher

    # health/ingress: the ingress gateways exposing web
    rows = await g.agent.request("GET", "/v1/health/ingress/web")
    assert [(r["Service"]["Service"], r["Service"]["Kind"]) for r in rows] == [
        ("ingress", "ingress-gateway")
    ]
    assert rows[0]["Service"]["Address"] == "127.0.0.1"
    assert await g.agent.request("GET", "/v1/health/ingress/nope") == []

    # catalog/gateway-services for both kinds
    rows = await g.agent.request("GET", "/v1/catalog/gateway-services/ingress")
    got = sorted(
        (r["Service"]["Name"], r["Port"], r["Protocol"], r["GatewayKind"])
        for r in rows
        if not r.get("FromWildcard")
    )
    assert got == sorted(
        [
            ("web", g.http_port, "http", "ingress-gateway"),
            ("web", g.tcp_port, "tcp", "ingress-gateway"),
            ("web", g.tls_port, "http", "ingress-gateway"),
            ("web", g.suites_port, "tcp", "ingress-gateway"),
        ]
    )
    wildcard = {r["Service"]["Name"] for r in rows if r.get("FromWildcard")}
    assert {"web", "ext"} <= wildcard, rows
    assert all(r["Port"] == g.wildcard_port for r in rows if r.get("FromWildcard"))
    rows = await g.agent.request("GET", "/v1/catalog/gateway-services/term")
    assert [(r["Service"]["Name"], r["GatewayKind"]) for r in rows] == [
        ("ext", "terminating-gateway")
    ]
    # a linked service's connect instances are the terminating gateway's
    rows = await g.agent.request("GET", "/v1/health/connect/ext")
    assert [r["Service"]["Service"] for r in rows] == ["term"]

    # DNS: web.ingress.consul answers the ingress gateway's address
    query = dns.message.make_query("web.ingress.consul", dns.rdatatype.A)
    answer = await dns.asyncquery.udp(query, "127.0.0.1", port=g.dns_port, timeout=5)
    addresses = sorted(item.address for rrset in answer.answer for item in rrset)
    assert addresses == ["127.0.0.1"], answer
    query = dns.message.make_query("nope.ingress.consul", dns.rdatatype.A)
    answer = await dns.asyncquery.udp(query, "127.0.0.1", port=g.dns_port, timeout=5)
    assert answer.answer == [] and answer.rcode() == dns.rcode.NXDOMAIN, answer

    # Terminating: client's sidecar -> term (mTLS, ext's leaf) -> ext in plain HTTP
    status, body = await g.via_terminating()
    assert status == 200 and json.loads(body)["instance"] == "ext-1", body

    # A deny intention is enforced by the gateway, and deleting it lets traffic through again
    await g.agent.request(
        "PUT", "/v1/connect/intentions/exact?source=client&destination=ext", {"Action": "deny"}
    )

    async def denied() -> bool:
        return (await g.via_terminating())[0] != 200

    await eventually(denied, timeout=DEADLINE, what="client -> ext denied at the gateway")
    await g.agent.request("DELETE", "/v1/connect/intentions/exact?source=client&destination=ext")

    async def allowed() -> bool:
        return (await g.via_terminating())[0] == 200

    await eventually(allowed, timeout=DEADLINE, what="client -> ext allowed again")

    # A wildcard links every typical service of the catalog (not the proxies, not the
    # gateways): ext is reached through it as before, and web and client are linked too.
    await g.agent.request(
        "PUT",
        "/v1/config",
        {"Kind": "terminating-gateway", "Name": "term", "Services": [{"Name": "*"}]},
    )

    async def linked_by_wildcard() -> bool:
        rows = await g.agent.request("GET", "/v1/catalog/gateway-services/term")
        got = {(r["Service"]["Name"], r.get("FromWildcard", False)) for r in rows}
        return got == {("client", True), ("ext", True), ("web", True)}

    await eventually(linked_by_wildcard, timeout=DEADLINE, what="term's wildcard rows")
    term_clusters = ""

    async def served_by_wildcard() -> bool:
        nonlocal term_clusters
        term_clusters = await g.envoys["term"].get("/clusters")
        names = {line.split("::", 1)[0].split(".")[0] for line in term_clusters.splitlines()}
        return {"client", "ext", "web"} <= names

    try:
        await eventually(served_by_wildcard, timeout=DEADLINE, what="term's wildcard clusters")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{term_clusters}") from None
    status, body = await g.via_terminating()
    assert status == 200 and json.loads(body)["instance"] == "ext-1", body
    rows = await g.agent.request("GET", "/v1/health/connect/web")
    assert "term" in {r["Service"]["Service"] for r in rows}, rows
