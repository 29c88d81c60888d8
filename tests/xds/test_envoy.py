"""Two real Envoys (web's and api's sidecars) driven by our ADS server.

web app --(plain http)--> web sidecar upstream listener --(mTLS)--> api sidecar public
listener --(plain http)--> api app. The tests change snapshots and watch Envoy follow.
Durations printed with ``-s`` are the measurements quoted in docs/xds.md.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import structlog

from consulpy.agent.proxylookup import MemoryLookup
from consulpy.agent.proxysnapshot import Endpoint, ProxySnapshot, Route
from consulpy.xds.resources import ROUTE
from consulpy.xds.server import XDSServer
from tests.helpers import eventually
from tests.xds.mesh import (
    Certs,
    Envoy,
    api_app,
    deny,
    free_port,
    sidecar_bootstrap,
    sidecar_snapshot,
    start_app,
    upstream_to,
    web_app,
)

WEB, API = "web-sidecar-proxy", "api-sidecar-proxy"
APPLY_TIMEOUT = 15.0


async def _tls_request(port: int, context: ssl.SSLContext) -> bytes:
    """One GET over a new TLS connection; returns the status line. (Reading to EOF would
    wait out Envoy's delayed close after a local 403 reply.)"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
        if not line:
            raise ConnectionResetError("connection closed before a response")
        return line
    finally:
        writer.close()


def client_context(tmp: Path, certs: Certs, leaf: tuple[str, str] | None) -> ssl.SSLContext:
    """A TLS client trusting the mesh roots, presenting ``leaf`` (or no certificate)."""
    ctx = ssl.create_default_context(cadata="".join(certs.roots))
    ctx.check_hostname = False  # mesh certificates carry a SPIFFE URI, not a host name
    if leaf is not None:
        n = len(list(tmp.glob("leaf-*.pem")))
        (tmp / f"leaf-{n}.pem").write_text(leaf[0])
        (tmp / f"leaf-{n}.key").write_text(leaf[1])
        ctx.load_cert_chain(tmp / f"leaf-{n}.pem", tmp / f"leaf-{n}.key")
    return ctx


class Mesh:
    """The server, two apps, two Envoys and the snapshots that wire them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.certs = Certs()
        self.lookup = MemoryLookup()
        self.server = XDSServer(self.lookup)
        self.runners: list = []
        self.envoys: dict[str, Envoy] = {}
        self.versions = {WEB: 0, API: 0}
        self._leaves: dict[str, ssl.SSLContext] = {}

    async def start(self, protocol: str = "http") -> None:
        self.grpc_port = await self.server.start("127.0.0.1", 0)
        runner, self.api_port = await start_app(api_app())
        self.runners.append(runner)
        self.api_public, self.web_public, self.web_upstream = free_port(), free_port(), free_port()
        runner, self.web_port = await start_app(web_app(self.web_upstream))
        self.runners.append(runner)
        self.publish_api(protocol=protocol)
        self.publish_web(protocol=protocol)
        for proxy, service in ((WEB, "web"), (API, "api")):
            self.envoys[proxy] = Envoy(
                self.tmp, service, sidecar_bootstrap(proxy, service, self.grpc_port)
            )
        await asyncio.gather(*(e.start() for e in self.envoys.values()))
        await self.applied(WEB)
        await self.applied(API)

    async def close(self) -> None:
        await asyncio.gather(*(e.stop() for e in self.envoys.values()))
        await self.server.stop()
        for runner in self.runners:
            await runner.cleanup()

    def _next(self, proxy: str) -> str:
        self.versions[proxy] += 1
        return str(self.versions[proxy])

    def publish_api(self, **kw) -> ProxySnapshot:
        snap = sidecar_snapshot(
            self.certs,
            "api",
            public_port=self.api_public,
            local_port=self.api_port,
            version=self._next(API),
            **kw,
        )
        self.lookup.publish(snap)
        return snap

    def publish_web(
        self, protocol: str = "http", extra_endpoints=(), routes=(), upstreams=None, **kw
    ) -> ProxySnapshot:
        endpoints = (Endpoint("127.0.0.1", self.api_public), *extra_endpoints)
        upstream = upstream_to(self.certs, "api", self.web_upstream, endpoints, protocol)
        upstream = replace(upstream, routes=routes)
        snap = sidecar_snapshot(
            self.certs,
            "web",
            public_port=self.web_public,
            local_port=self.web_port,
            protocol=protocol,
            upstreams=(upstream,) if upstreams is None else upstreams,
            version=self._next(WEB),
            **kw,
        )
        self.lookup.publish(snap)
        return snap

    async def applied(self, proxy: str) -> float:
        """Seconds until the proxy's Envoy ACKed all of its latest snapshot."""
        start = time.monotonic()
        ok = await self.server.wait_applied(proxy, str(self.versions[proxy]), APPLY_TIMEOUT)
        assert ok, f"{proxy} did not apply version {self.versions[proxy]}:\n" + "\n".join(
            e.logs() for e in self.envoys.values()
        )
        return time.monotonic() - start

    async def call(self) -> tuple[int, str]:
        """A request from the web app through the mesh to api."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{self.web_port}/call") as resp,
        ):
            return resp.status, await resp.text()

    async def direct(self, service: str = "web") -> int:
        """A NEW mutual-TLS connection to api's public listener, as ``service``'s sidecar
        would open it; returns the HTTP status (0 if the connection was refused)."""
        if service not in self._leaves:
            self._leaves[service] = client_context(self.tmp, self.certs, self.certs.leaf(service))
        try:
            reply = await _tls_request(self.api_public, self._leaves[service])
        except (ssl.SSLError, ConnectionError):
            return 0
        return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0

    async def tcp_roundtrip(self) -> bool:
        """A fresh TCP connection to web's upstream listener carrying one HTTP request; True
        if api answered."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.web_upstream), 5
            )
        except OSError:
            return False
        try:
            writer.write(b"GET /tcp HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
        return data.startswith(b"HTTP/1.1 200") and b'"service": "api"' in data


@pytest_asyncio.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    m = Mesh(tmp_path)
    try:
        await m.start()
        yield m
    finally:
        await m.close()


def xfcc(body: str) -> str:
    return json.loads(body)["headers"]["x-forwarded-client-cert"]


async def answers(mesh: Mesh, source: str, status: int) -> None:
    """New connections from `source` get `status`, polled: Envoy ACKs a listener update
    before the replacement listener takes new connections, and on a loaded machine the
    swap can trail the ACK."""

    async def check() -> bool:
        return await mesh.direct(source) == status

    await eventually(check, timeout=APPLY_TIMEOUT, what=f"{source} answered {status}")


async def test_web_reaches_api_over_mutual_tls(mesh: Mesh) -> None:
    status, body = await mesh.call()
    assert status == 200, body
    header = xfcc(body)
    td = mesh.certs.trust_domain
    # api's sidecar saw web's certificate and says so to the app.
    assert f"URI=spiffe://{td}/ns/default/dc/dc1/svc/web" in header
    assert f"By=spiffe://{td}/ns/default/dc/dc1/svc/api" in header
    stats = await mesh.envoys[API].get("/stats?filter=ssl.handshake")
    assert "listener.127.0.0.1_" in stats


async def test_deny_intention_blocks_new_connections_then_allows(mesh: Mesh) -> None:
    """Authorization happens when a connection (TCP) or request (HTTP) arrives on a filter
    chain; a listener update gives NEW connections the new rules, while Envoy drains the
    established ones (such as web's sidecar's pooled upstream connections) over its drain
    time. So this checks new connections, as web's sidecar opens them."""
    await answers(mesh, "web", 200)
    start = time.monotonic()
    mesh.publish_api(intentions=(deny("web", "api"),))

    async def denied() -> bool:
        return await mesh.direct("web") == 403

    took = await eventually(denied, timeout=APPLY_TIMEOUT, what="deny applied")
    acked = await mesh.applied(API)
    print(
        f"\ndeny intention: new connections refused {took * 1000:.0f} ms after publish "
        f"(all ACKed {(time.monotonic() - start) * 1000:.0f} ms after publish)"
    )
    await answers(mesh, "db", 200)  # others are still allowed
    del acked

    mesh.publish_api(intentions=())

    async def allowed() -> bool:
        return await mesh.direct("web") == 200

    took = await eventually(allowed, timeout=APPLY_TIMEOUT, what="deny removed")
    print(f"intention removed: new connections pass again after {took * 1000:.0f} ms")


async def test_default_deny_with_allow_intention(mesh: Mesh) -> None:
    allow = {**deny("web", "api"), "Action": "allow"}
    mesh.publish_api(default_allow=False, intentions=(allow,))
    await mesh.applied(API)
    await answers(mesh, "web", 200)
    await answers(mesh, "db", 403)
    mesh.publish_api(default_allow=False, intentions=())
    await mesh.applied(API)
    await answers(mesh, "web", 403)


async def test_l7_intention(mesh: Mesh) -> None:
    l7 = {
        **deny("web", "api"),
        "Permissions": [
            {"Action": "deny", "HTTP": {"PathPrefix": "/", "Methods": ["GET"]}},
        ],
    }
    del l7["Action"]
    mesh.publish_api(intentions=(l7,))
    await mesh.applied(API)
    await answers(mesh, "web", 403)  # GET / is denied for web
    await answers(mesh, "db", 200)


async def test_tcp_protocol_new_connections_follow_intentions(mesh: Mesh) -> None:
    mesh.publish_api(protocol="tcp")
    mesh.publish_web(protocol="tcp")
    await mesh.applied(API)
    await mesh.applied(WEB)
    await eventually(mesh.tcp_roundtrip, timeout=5, what="tcp path up")

    mesh.publish_api(protocol="tcp", intentions=(deny("web", "api"),))

    async def refused() -> bool:
        return not await mesh.tcp_roundtrip()

    took = await eventually(refused, timeout=1.0, what="tcp deny applied")
    print(f"\ntcp deny: new connections refused {took * 1000:.0f} ms after publish")
    mesh.publish_api(protocol="tcp")
    took = await eventually(mesh.tcp_roundtrip, timeout=1.0, what="tcp deny removed")
    print(f"tcp allow: new connections pass {took * 1000:.0f} ms after publish")


async def test_public_listener_rejects_clients_without_a_valid_leaf(mesh: Mesh) -> None:
    # Control: web's own leaf is let in (default allow) and reaches the app.
    await answers(mesh, "web", 200)

    # No client certificate at all.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _tls_request(mesh.api_public, client_context(mesh.tmp, mesh.certs, None))

    # A leaf for "web" in our trust domain, from a CA the mesh does not trust.
    rogue = Certs(cluster_id=mesh.certs.cluster_id)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _tls_request(mesh.api_public, client_context(mesh.tmp, mesh.certs, rogue.leaf("web")))


async def test_new_endpoint_shows_in_admin_clusters(mesh: Mesh) -> None:
    extra_port = free_port()
    start = time.monotonic()
    mesh.publish_web(extra_endpoints=(Endpoint("127.0.0.2", extra_port, healthy=False),))

    async def listed() -> bool:
        text = await mesh.envoys[WEB].get("/clusters")
        return f"127.0.0.2:{extra_port}::health_flags::/failed_eds_health" in text

    took = await eventually(listed, timeout=5, what="new endpoint in /clusters")
    print(
        f"\nnew endpoint visible in Envoy admin /clusters after {took * 1000:.0f} ms "
        f"({(time.monotonic() - start) * 1000:.0f} ms since publish)"
    )
    # It is unhealthy, so traffic still only goes to the real api sidecar.
    for _ in range(3):
        assert (await mesh.call())[0] == 200


async def test_nack_keeps_the_last_good_config(mesh: Mesh) -> None:
    # An L7 intention with a regex RE2 cannot compile: Envoy rejects the listener.
    bad = {
        **deny("web", "api"),
        "Permissions": [{"Action": "deny", "HTTP": {"PathRegex": "(unclosed"}}],
    }
    del bad["Action"]
    with structlog.testing.capture_logs() as logs:
        mesh.publish_api(intentions=(bad,))
        await eventually(
            lambda: any(s.nacks for s in mesh.server.streams(API)), timeout=5, what="NACK"
        )
    [status] = mesh.server.streams(API)
    assert "unclosed" in status.last_nack or "regex" in status.last_nack.lower(), status.last_nack
    nacks = [e for e in logs if e["event"].startswith("xds nack")]
    assert nacks and nacks[0]["type"] == "LDS"
    # The previous listener (no intentions) is still in force.
    assert (await mesh.call())[0] == 200
    stats = await mesh.envoys[API].get("/stats?filter=listener_manager.lds.update_rejected")
    assert "update_rejected: 1" in stats

    # The next good snapshot is applied as usual.
    mesh.publish_api(intentions=(deny("web", "api"),))
    await mesh.applied(API)
    await answers(mesh, "web", 403)


async def test_envoy_restart_gets_the_full_config(mesh: Mesh) -> None:
    old = mesh.envoys[WEB]
    await old.stop()
    await eventually(lambda: not mesh.server.streams(WEB), what="old stream closed")
    mesh.envoys[WEB] = Envoy(mesh.tmp / "again", "web", old.bootstrap)
    start = time.monotonic()
    await mesh.envoys[WEB].start()
    await mesh.applied(WEB)
    print(
        f"\nrestarted Envoy fully configured {(time.monotonic() - start) * 1000:.0f} ms after exec"
    )
    assert (await mesh.call())[0] == 200


async def test_server_restart_envoy_reconnects(mesh: Mesh) -> None:
    await mesh.server.stop(0)
    assert (await mesh.call())[0] == 200  # Envoy keeps serving its last config
    server = XDSServer(mesh.lookup)
    await server.start("127.0.0.1", mesh.grpc_port)
    mesh.server = server
    start = time.monotonic()
    await eventually(
        lambda: len(server.streams()) == 2, timeout=APPLY_TIMEOUT, what="both Envoys reconnected"
    )
    print(
        f"\nEnvoys reconnected {(time.monotonic() - start) * 1000:.0f} ms after the "
        "server came back"
    )
    await mesh.applied(WEB)
    await mesh.applied(API)
    # They told us what they hold: nothing had to be re-sent.
    assert all(s.acks == 0 for s in server.streams())
    mesh.publish_api(intentions=(deny("web", "api"),))
    await mesh.applied(API)
    await answers(mesh, "web", 403)


async def test_state_of_the_world_envoy(mesh: Mesh) -> None:
    old = mesh.envoys[WEB]
    await old.stop()
    bootstrap = {**old.bootstrap}
    dynamic = {**bootstrap["dynamic_resources"]}
    dynamic["ads_config"] = {**dynamic["ads_config"], "api_type": "GRPC"}
    bootstrap["dynamic_resources"] = dynamic
    mesh.envoys[WEB] = Envoy(mesh.tmp / "sotw", "web", bootstrap)
    await mesh.envoys[WEB].start()
    await mesh.applied(WEB)
    assert [s.protocol for s in mesh.server.streams(WEB)] == ["sotw"]
    assert (await mesh.call())[0] == 200
    mesh.publish_web(extra_endpoints=(Endpoint("127.0.0.2", free_port(), healthy=False),))
    await mesh.applied(WEB)
    assert (await mesh.call())[0] == 200


async def test_rotated_leaf_keeps_traffic_flowing(mesh: Mesh) -> None:
    snap = mesh.lookup.current(API)
    assert snap is not None
    mesh.publish_api()  # a freshly issued leaf: listener replaced in place
    await mesh.applied(API)
    assert mesh.lookup.current(API).leaf_cert_pem != snap.leaf_cert_pem
    assert (await mesh.call())[0] == 200
    # Replace the web proxy's leaf too: its upstream cluster is rebuilt and re-warmed.
    mesh.publish_web()
    await mesh.applied(WEB)
    assert (await mesh.call())[0] == 200


async def test_routes_over_rds(mesh: Mesh) -> None:
    api = mesh.lookup.current(WEB).upstreams[0].targets[0].cluster_name
    routes = (
        Route(path_prefix="/hello", prefix_rewrite="/rewritten", cluster=api, timeout_s=5),
        Route(splits=((api, 100.0),)),
    )
    mesh.publish_web(routes=routes)
    await mesh.applied(WEB)
    assert next(s.session.acked(ROUTE) for s in mesh.server.streams(WEB)).keys() == {"api"}
    status, body = await mesh.call()  # the web app asks for /hello
    assert status == 200 and json.loads(body)["path"] == "/rewritten"
    mesh.publish_web()  # back to the default chain: the route configuration goes away
    await mesh.applied(WEB)
    status, body = await mesh.call()
    assert status == 200 and json.loads(body)["path"] == "/hello"


async def test_upstream_removed_and_added_back(mesh: Mesh) -> None:
    mesh.publish_web(upstreams=())
    await mesh.applied(WEB)
    clusters = await mesh.envoys[WEB].get("/clusters")
    assert "api.default.dc1.internal" not in clusters
    listeners = await mesh.envoys[WEB].get_json("/listeners?format=json")
    names = [entry["name"] for entry in listeners["listener_statuses"]]
    assert names == [f"public_listener:127.0.0.1:{mesh.web_public}"]
    assert (await mesh.call())[0] == 599  # nothing listens on the upstream port
    mesh.publish_web()
    await mesh.applied(WEB)
    assert (await mesh.call())[0] == 200


async def test_resolver_failover_through_an_aggregate_cluster(mesh: Mesh) -> None:
    """The compiled chain's failover, rendered: the v1 subset has no instance, so Envoy's
    aggregate cluster sends the request to the failover target (v2, api's sidecar)."""
    from consulpy.agent.proxycfg_chain import render_upstream
    from consulpy.connect import config_entries as ce

    entries = [
        ce.normalize(e)
        for e in (
            {"Kind": "service-defaults", "Name": "api", "Protocol": "http"},
            {
                "Kind": "service-resolver",
                "Name": "api",
                "DefaultSubset": "v1",
                "Subsets": {"v1": {"Filter": "Service.Meta.v == 1"}, "v2": {}},
                "Failover": {"v1": {"ServiceSubset": "v2"}},
            },
        )
    ]
    chain = ce.compile_chain(
        "api", ce.lookup_in(entries), datacenter="dc1", trust_domain=mesh.certs.trust_domain
    )
    v2 = "v2.api.default.default.dc1"
    upstream = render_upstream(
        chain,
        upstream_id="api",
        local_bind_address="127.0.0.1",
        local_bind_port=mesh.web_upstream,
        trust_domain=mesh.certs.trust_domain,
        endpoints={v2: (Endpoint("127.0.0.1", mesh.api_public),)},
    )
    primary = upstream.targets[0]
    assert primary.cluster_name.startswith("v1.api.default.dc1.internal.")
    assert [n.split("~")[1] for n in primary.aggregate] == ["0", "1"]
    mesh.publish_web(upstreams=(upstream,))
    await mesh.applied(WEB)
    status, body = await mesh.call()
    assert status == 200, body
    assert json.loads(body)["service"] == "api"
    clusters = await mesh.envoys[WEB].get("/clusters")
    assert f"failover-target~1~v2.api.default.dc1.internal.{mesh.certs.trust_domain}" in clusters
