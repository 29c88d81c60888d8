"""Two datacenters, each one `consulpy agent -dev` server federated over the WAN pool, with
real Envoys: web (dc1) -> web's sidecar -> mesh gateway dc1 -> mesh gateway dc2 -> api's
sidecar (dc2) -> api, over mutual TLS end to end; intentions of dc2 enforced on that path;
a service-resolver in dc1 failing `api` over to dc2 when dc1's api turns critical.

dc1 is the primary datacenter: dc2's CA is an intermediate signed by dc1's root (one trust
domain, so a dc1 sidecar verifies dc2's api), and config entries and intentions written in
either datacenter live in dc1 and replicate to dc2.

One federation serves every assertion (a start costs four Envoys and two agents).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from consulpy.util.ports import aretry_on_addr_in_use, free_port
from tests.helpers import eventually
from tests.mesh.harness import AgentProc, ApiApp, Sidecar, free_ports
from tests.wan.harness import FAST_WAN
from tests.xds.mesh import start_app

DEADLINE = 90.0
PRIMARY = '-hcl=primary_datacenter = "dc1"'
V1_META = {"version": "v1"}
V1 = {"v1": {"Filter": 'Service.Meta.version == "v1"'}}
SAMPLES = 200


class MeshGateway(Sidecar):
    """`consulpy connect envoy -gateway=mesh -register -address ... -wan-address ...`."""

    def __init__(self, workdir: Path, agent: AgentProc, port: int) -> None:
        super().__init__(workdir, f"gateway-{port}", agent)
        self.port = port

    def connect_flags(self) -> list[str]:
        address = f"127.0.0.1:{self.port}"
        return ["-gateway=mesh", "-register", "-address", address, "-wan-address", address]


def sidecar_service(
    name: str, port: int, public: int, upstreams: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An /v1/agent/service/register body: the app checked every second, its sidecar healthy
    when listening and when the app is (alias)."""
    return {
        "Name": name,
        "ID": name,
        "Port": port,
        "Check": {"HTTP": f"http://127.0.0.1:{port}/health", "Interval": "1s"},
        "Connect": {
            "SidecarService": {
                "Port": public,
                "Checks": [
                    {"Name": "listening", "TCP": f"127.0.0.1:{public}", "Interval": "1s"},
                    {"Name": "app", "AliasService": name},
                ],
                "Proxy": {"Upstreams": upstreams or []},
            }
        },
    }


async def get(port: int, session: aiohttp.ClientSession | None = None) -> tuple[int, str]:
    """GET through a sidecar upstream listener; (599, error) when the connection fails."""
    url = f"http://127.0.0.1:{port}/hello"
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        if session is not None:
            async with session.get(url) as resp:
                return resp.status, await resp.text()
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url) as resp:
            return resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 599, repr(exc)


def instance(text: str) -> str:
    try:
        return str(json.loads(text).get("instance", ""))
    except ValueError:
        return ""


async def answers(port: int, who: str) -> bool:
    status, text = await get(port)
    return status == 200 and instance(text) == who


async def refused(port: int) -> bool:
    status, _ = await get(port)
    return status != 200


async def medians_ms(ports: tuple[int, int], n: int, keep_alive: bool) -> tuple[float, float]:
    """Median latency of `n` GETs on each port, the two interleaved so that load from the
    rest of the machine falls on both alike; one kept-alive connection per port, or a new
    connection (and so a new mutual-TLS handshake) per request."""
    samples: tuple[list[float], list[float]] = ([], [])
    connectors = [aiohttp.TCPConnector(limit=1, force_close=not keep_alive) for _ in ports]
    sessions = [aiohttp.ClientSession(connector=c) for c in connectors]
    try:
        for _ in range(n):
            for port, session, out in zip(ports, sessions, samples, strict=True):
                start = time.perf_counter()
                status, text = await get(port, session)
                out.append((time.perf_counter() - start) * 1000)
                assert status == 200, text
    finally:
        for session in sessions:
            await session.close()
    return statistics.median(samples[0]), statistics.median(samples[1])


async def test_mesh_gateways_across_datacenters(tmp_path: Path) -> None:
    attempts: list[Path] = []

    async def attempt() -> None:
        attempts.append(tmp_path / f"attempt-{len(attempts) + 1}")
        await _scenario(attempts[-1])

    # An Envoy listener port taken between choosing it and binding it (the failure then
    # carries Envoy's "address already in use"): run again on new ports.
    await aretry_on_addr_in_use(attempt, lambda: None)


async def _scenario(tmp_path: Path) -> None:
    wan1 = free_port(udp=True)
    for dc in ("dc1", "dc2"):
        (tmp_path / dc / "config").mkdir(parents=True)
    dc1 = AgentProc(
        tmp_path / "dc1",
        tmp_path / "dc1" / "config",
        extra=[
            "-datacenter=dc1",
            "-node=node-dc1",
            f"-serf-wan-port={wan1}",
            FAST_WAN,
            PRIMARY,
        ],
    )
    dc2 = AgentProc(
        tmp_path / "dc2",
        tmp_path / "dc2" / "config",
        extra=[
            "-datacenter=dc2",
            "-node=node-dc2",
            f"-serf-wan-port={free_port(udp=True)}",
            FAST_WAN,
            f"-retry-join-wan=127.0.0.1:{wan1}",
            "-retry-interval-wan=1s",
            PRIMARY,
        ],
    )
    api1, api2 = ApiApp("api-dc1"), ApiApp("api-dc2")
    runners = []
    envoys: list[Sidecar] = []
    try:
        (runner1, api1_port), (runner2, api2_port) = [await start_app(a.app) for a in (api1, api2)]
        web_runner, web_port = await start_app(ApiApp("web").app)
        runners += [runner1, runner2, web_runner]
        await dc1.start()
        await dc2.start()

        async def federated() -> bool:
            for agent in (dc1, dc2):
                dcs = await agent.request("GET", "/v1/catalog/datacenters")
                if sorted(dcs) != ["dc1", "dc2"]:
                    return False
            return True

        await eventually(federated, timeout=DEADLINE, what="both datacenters federated")
        # One CA for both datacenters: dc2's intermediate is signed by dc1's root.
        await _same_trust_domain(dc1, dc2)

        # dc1: api fails over to dc2; sidecars reach other DCs through the local gateway.
        await dc1.request(
            "PUT",
            "/v1/config",
            {"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "local"}},
        )
        await dc1.request(
            "PUT",
            "/v1/config",
            {
                "Kind": "service-resolver",
                "Name": "api",
                "Subsets": V1,
                "Failover": {"*": {"Datacenters": ["dc2"]}},
            },
        )
        # api-v1: dc2's api instances of subset v1, through the gateways (subset SNI)
        await dc1.request(
            "PUT",
            "/v1/config",
            {
                "Kind": "service-resolver",
                "Name": "api-v1",
                "Redirect": {"Service": "api", "ServiceSubset": "v1", "Datacenter": "dc2"},
            },
        )

        # dc2's gateway builds the subset's cluster from the replicated resolver
        async def replicated() -> bool:
            entries = await dc2.request("GET", "/v1/config/service-resolver")
            return {e["Name"] for e in entries} == {"api", "api-v1"}

        await eventually(replicated, timeout=DEADLINE, what="resolvers replicated to dc2")
        (
            gw1_port,
            gw2_port,
            api1_public,
            api2_public,
            web_public,
            up_local,
            up_dc2,
            up_remote,
            up_direct,
            up_subset,
        ) = free_ports(10)
        upstreams = [
            {"DestinationName": "api", "LocalBindPort": up_local},
            {"DestinationName": "api", "Datacenter": "dc2", "LocalBindPort": up_dc2},
            {
                "DestinationName": "api",
                "Datacenter": "dc2",
                "LocalBindPort": up_remote,
                "MeshGateway": {"Mode": "remote"},
            },
            {
                "DestinationName": "api",
                "Datacenter": "dc2",
                "LocalBindPort": up_direct,
                "MeshGateway": {"Mode": "none"},
            },
            {"DestinationName": "api-v1", "LocalBindPort": up_subset},
        ]
        await dc1.request(
            "PUT", "/v1/agent/service/register", sidecar_service("api", api1_port, api1_public)
        )
        await dc1.request(
            "PUT",
            "/v1/agent/service/register",
            sidecar_service("web", web_port, web_public, upstreams),
        )
        api2_service = sidecar_service("api", api2_port, api2_public)
        await dc2.request("PUT", "/v1/agent/service/register", {**api2_service, "Meta": V1_META})
        envoys += [
            Sidecar(tmp_path / "dc1", "api", dc1),
            Sidecar(tmp_path / "dc1", "web", dc1),
            Sidecar(tmp_path / "dc2", "api", dc2),
            MeshGateway(tmp_path / "dc1", dc1, gw1_port),
            MeshGateway(tmp_path / "dc2", dc2, gw2_port),
        ]
        for envoy in envoys:
            await envoy.start()

        async def diagnose() -> str:
            out = []
            for envoy in envoys:
                out.append(f"--- {envoy.name} clusters:\n{await envoy.get('/clusters')}")
                out.append(f"--- {envoy.name} logs:\n{envoy.logs()}")
            out += [f"--- dc1:\n{dc1.output()[-4000:]}", f"--- dc2:\n{dc2.output()[-4000:]}"]
            return "\n".join(out)

        try:
            # web -> gateway dc1 -> gateway dc2 -> api (dc2)
            await eventually(
                lambda: answers(up_dc2, "api-dc2"),
                timeout=DEADLINE,
                what="api?dc=dc2 through both gateways",
            )
            # dc1's gateway forwarded that by datacenter: it has no cluster of dc2's api,
            # only dc2's gateways (`*.dc2.internal.<td>`), and a catch-all chain Envoy took
            gw1 = envoys[3]
            clusters = await gw1.get("/clusters")
            names = {line.split("::", 1)[0] for line in clusters.splitlines() if "::" in line}
            assert not any(".dc2.internal." in n for n in names), names
            assert any(n.startswith("dc2.internal.") for n in names), names
            dump = await gw1.get("/config_dump")
            assert "envoy.filters.network.sni_cluster" in dump, dump[-4000:]
            # remote mode: web's sidecar dials dc2's gateway itself
            await eventually(
                lambda: answers(up_remote, "api-dc2"),
                timeout=DEADLINE,
                what="api?dc=dc2 through dc2's gateway (remote mode)",
            )
            # mode none: straight to dc2's api sidecar (loopback reaches it)
            await eventually(
                lambda: answers(up_direct, "api-dc2"),
                timeout=DEADLINE,
                what="api?dc=dc2 without gateways (mode none)",
            )
            # a resolver subset in dc2: dc2's gateway has a filter chain for its SNI
            await eventually(
                lambda: answers(up_subset, "api-dc2"),
                timeout=DEADLINE,
                what="subset v1 of api in dc2 through both gateways",
            )
            await eventually(
                lambda: answers(up_local, "api-dc1"), timeout=DEADLINE, what="api in dc1"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await diagnose()}") from None

        # The overhead of two gateways: same run, same apps, kept-alive connections.
        for keep_alive in (True, False):
            direct, gateways = await medians_ms((up_local, up_dc2), SAMPLES, keep_alive)
            print(
                f"\nmedian latency ({'kept-alive' if keep_alive else 'new connection'}): "
                f"direct {direct:.2f} ms, through two gateways {gateways:.2f} ms"
            )

        # A deny for web -> api, made through dc2 (so written in the primary, replicated
        # back): dc2's api sidecar refuses web's calls from dc1, and dc1's does too.
        deny = {"SourceName": "web", "DestinationName": "api", "Action": "deny"}
        created = await dc2.request("POST", "/v1/connect/intentions", deny)
        await eventually(lambda: refused(up_dc2), timeout=DEADLINE, what="deny applied in dc2")
        await eventually(lambda: refused(up_local), timeout=DEADLINE, what="deny applied in dc1")
        # Deleted through dc2 too (the delete reads the primary's copy, then writes there).
        await dc2.request("DELETE", f"/v1/connect/intentions/{created['ID']}")
        await eventually(
            lambda: answers(up_dc2, "api-dc2"), timeout=DEADLINE, what="allowed again in dc2"
        )
        await eventually(
            lambda: answers(up_local, "api-dc1"), timeout=DEADLINE, what="allowed again in dc1"
        )

        # Failover: dc1's api turns critical -> web's `api` reaches dc2's through the gateways.
        start = time.monotonic()
        api1.healthy = False
        await eventually(
            lambda: answers(up_local, "api-dc2"), timeout=DEADLINE, what="failover to dc2"
        )
        print(f"failover to dc2 took {time.monotonic() - start:.2f} s")
        api1.healthy = True
        await eventually(lambda: answers(up_local, "api-dc1"), timeout=DEADLINE, what="back to dc1")
    finally:
        for envoy in envoys:
            await envoy.stop()
        await dc1.stop()
        await dc2.stop()
        for runner in runners:
            await runner.cleanup()


async def _same_trust_domain(dc1: AgentProc, dc2: AgentProc) -> None:
    td1 = (await dc1.request("GET", "/v1/connect/ca/roots"))["TrustDomain"]

    async def same() -> bool:
        return (await dc2.request("GET", "/v1/connect/ca/roots"))["TrustDomain"] == td1

    await eventually(same, timeout=DEADLINE, what="dc2 on dc1's CA")
