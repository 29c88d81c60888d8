"""End to end: a dev agent, `web` and `api` each with an Envoy sidecar started by
`consulpy connect envoy -sidecar-for`, services and config entries from a config directory,
intentions and CA changes through the HTTP API, as a user would do it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest_asyncio
from aiohttp import web

from consulpy.util.ports import addr_in_use, aretry_on_addr_in_use
from tests.helpers import eventually
from tests.mesh.harness import (
    AgentProc,
    ApiApp,
    Sidecar,
    free_ports,
    service_file,
    web_app,
)
from tests.xds.mesh import start_app

DEADLINE = 30.0


@dataclass
class Mesh:
    tmp: Path
    agent: AgentProc
    api: ApiApp
    upstream_port: int
    api_public: int
    web_port: int
    sidecars: dict[str, Sidecar] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)

    async def call(self) -> tuple[int, str]:
        """GET web's /call: web -> web's sidecar -> api's sidecar -> api."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{self.web_port}/call") as resp,
        ):
            return resp.status, await resp.text()

    async def succeeds(self) -> bool:
        status, _ = await self.call()
        return status == 200

    async def diagnose(self) -> str:
        """What a failing setup looks like: the last call, health, Envoy's view, logs."""
        out = [f"call: {await self.call()}"]
        out.append(f"health: {await self.agent.request('GET', '/v1/health/connect/api')}")
        for sid, sidecar in self.sidecars.items():
            out.append(f"--- {sid} clusters:\n{await sidecar.get('/clusters')}")
            out.append(f"--- {sid} listeners:\n{await sidecar.get('/listeners')}")
            out.append(f"--- {sid} logs:\n{sidecar.logs()}")
        out.append(f"--- agent:\n{self.agent.output()[-6000:]}")
        return "\n".join(out)

    async def start_sidecar(self, sid: str) -> Sidecar:
        sidecar = Sidecar(self.tmp, sid, self.agent)
        self.sidecars[sid] = sidecar
        await sidecar.start()
        return sidecar


async def _start_mesh(tmp: Path) -> Mesh:
    """One attempt at the whole setup; what it started is stopped again if it fails."""
    tmp.mkdir(parents=True)
    api = ApiApp("api-1")
    api_runner, api_port = await start_app(api.app)
    # Envoy's listener ports go into the service definitions before Envoy exists.
    upstream_port, api_public, web_public = free_ports(3)
    web_runner, web_port = await start_app(web_app(upstream_port))
    config_dir = tmp / "config"
    config_dir.mkdir()
    (config_dir / "api.json").write_text(
        json.dumps(service_file("api", "api", api_port, api_public))
    )
    upstream = {"destination_name": "api", "local_bind_port": upstream_port}
    (config_dir / "web.json").write_text(
        json.dumps(service_file("web", "web", web_port, web_public, [upstream]))
    )
    # http protocol for api: L7 listener, so api sees the caller's identity (XFCC header)
    (config_dir / "entries.json").write_text(
        json.dumps(
            {
                "config_entries": {
                    "bootstrap": [{"kind": "service-defaults", "name": "api", "protocol": "http"}]
                }
            }
        )
    )
    agent = AgentProc(tmp, config_dir)  # HTTP and gRPC on ports the agent picks
    m = Mesh(tmp, agent, api, upstream_port, api_public, web_port)
    m.runners += [api_runner, web_runner]
    try:
        await agent.start()
        await m.start_sidecar("api")
        await m.start_sidecar("web")

        async def works() -> bool:
            for sid, sidecar in m.sidecars.items():
                if addr_in_use(sidecar.logs()):  # another process took a listener port
                    raise AssertionError(f"{sid}'s Envoy could not bind:\n{sidecar.logs()}")
            return await m.succeeds()

        try:
            await eventually(works, timeout=DEADLINE, what="web -> api through the sidecars")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await m.diagnose()}") from None
    except BaseException:
        await _stop_mesh(m)
        raise
    return m


async def _stop_mesh(m: Mesh) -> None:
    for sidecar in m.sidecars.values():
        await sidecar.stop()
    await m.agent.stop()
    for runner in m.runners:
        await runner.cleanup()


@pytest_asyncio.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    attempts: list[Path] = []

    async def start() -> Mesh:
        attempts.append(tmp_path / f"attempt-{len(attempts) + 1}")
        return await _start_mesh(attempts[-1])

    # A listener port taken between choosing and Envoy binding it: start over on new ports.
    m = await aretry_on_addr_in_use(start, lambda: None)
    try:
        yield m
    finally:
        await _stop_mesh(m)


async def test_web_reaches_api_over_mutual_tls(mesh: Mesh) -> None:
    roots = await mesh.agent.request("GET", "/v1/connect/ca/roots")
    web_id = f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/web"
    seen: list[str] = []

    async def api_sees_web() -> bool:
        # api's protocol (http, from config_entries.bootstrap) reaches the sidecars just
        # after the first snapshot; from then on api's Envoy forwards the caller's identity
        status, body = await mesh.call()
        assert status == 200, body
        echoed = json.loads(body)
        assert echoed["instance"] == "api-1"
        headers = {k.lower(): v for k, v in echoed["headers"].items()}
        seen.append(headers.get("x-forwarded-client-cert", ""))
        return f"URI={web_id}" in seen[-1]

    await eventually(api_sees_web, timeout=DEADLINE, what=f"XFCC with {web_id}: {seen[-1:]}")


async def test_deny_intention_blocks_then_delete_allows(mesh: Mesh) -> None:
    await mesh.agent.request(
        "PUT", "/v1/connect/intentions/exact?source=web&destination=api", {"Action": "deny"}
    )

    async def denied() -> bool:
        status, _ = await mesh.call()
        return status == 403

    await eventually(denied, timeout=DEADLINE, what="deny intention enforced")
    await mesh.agent.request("DELETE", "/v1/connect/intentions/exact?source=web&destination=api")
    await eventually(mesh.succeeds, timeout=DEADLINE, what="allowed again")


async def test_public_listener_rejects_a_client_without_a_leaf(mesh: Mesh) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for scheme in ("http", "https"):
            try:
                async with session.get(
                    f"{scheme}://127.0.0.1:{mesh.api_public}/", ssl=False
                ) as resp:
                    raise AssertionError(f"{scheme} without a leaf got {resp.status}")
            except (aiohttp.ClientError, ConnectionError):
                pass  # refused during the TLS handshake: no client certificate
    assert await mesh.succeeds()


async def test_new_instance_appears_and_failing_check_removes_it(mesh: Mesh) -> None:
    api2 = ApiApp("api-2")
    runner, port2 = await start_app(api2.app)
    mesh.runners.append(runner)
    (public2,) = free_ports(1)
    definition = service_file("api", "api2", port2, public2)["service"]
    await mesh.agent.request("PUT", "/v1/agent/service/register", _api_spelling(definition))
    await mesh.start_sidecar("api2")
    web = mesh.sidecars["web"]

    async def both() -> bool:
        return await web.healthy_endpoints("api.") == {mesh.api_public, public2}

    await eventually(both, timeout=DEADLINE, what="api2 in web's endpoints")
    seen = set()

    async def reaches_both() -> bool:
        status, body = await mesh.call()
        if status == 200:
            seen.add(json.loads(body)["instance"])
        return seen == {"api-1", "api-2"}

    await eventually(reaches_both, timeout=DEADLINE, what="traffic to both instances")

    api2.healthy = False

    async def only_first() -> bool:
        return await web.healthy_endpoints("api.") == {mesh.api_public}

    await eventually(only_first, timeout=DEADLINE, what="failing api2 removed")
    for _ in range(5):
        status, body = await mesh.call()
        assert status == 200 and json.loads(body)["instance"] == "api-1", body


def _api_spelling(definition: dict) -> dict:
    """The config-file service definition in the HTTP API's spelling."""
    sidecar = definition["connect"]["sidecar_service"]
    return {
        "Name": definition["name"],
        "ID": definition["id"],
        "Port": definition["port"],
        "Check": {"HTTP": definition["check"]["http"], "Interval": "1s"},
        "Connect": {
            "SidecarService": {
                "Port": sidecar["port"],
                "Checks": [
                    {
                        "Name": "sidecar listening",
                        "TCP": sidecar["checks"][0]["tcp"],
                        "Interval": "1s",
                    },
                    {"Name": "service healthy", "AliasService": definition["id"]},
                ],
            }
        },
    }


async def test_root_rotation_reaches_both_envoys_and_traffic_flows(mesh: Mesh) -> None:
    await mesh.agent.request(
        "PUT",
        "/v1/connect/ca/configuration",
        {"Provider": "consul", "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384}},
    )
    await _trust_root_everywhere(mesh, await mesh.agent.request("GET", "/v1/connect/ca/roots"))
    for _ in range(5):
        assert await mesh.succeeds()


async def _trust_root_everywhere(mesh: Mesh, roots: dict) -> None:
    """Wait until both Envoys' config carries the active root of ``roots``."""
    active = next(r for r in roots["Roots"] if r["Active"])
    marker = active["RootCert"].splitlines()[1]  # a line of the root's base64
    for sid in ("api", "web"):
        sidecar = mesh.sidecars[sid]

        async def trusts(sidecar: Sidecar = sidecar) -> bool:
            return marker in await sidecar.get("/config_dump")

        await eventually(trusts, timeout=DEADLINE, what=f"{sid} trusts root {active['ID']}")


async def test_envoy_restart_gets_full_config(mesh: Mesh) -> None:
    web = mesh.sidecars["web"]
    await web.stop()
    status, _ = await mesh.call()
    assert status != 200
    await web.start()
    await eventually(mesh.succeeds, timeout=DEADLINE, what="traffic after the Envoy restart")


async def test_agent_restart_sidecars_reconnect(mesh: Mesh) -> None:
    old = await mesh.agent.request("GET", "/v1/connect/ca/roots")
    await mesh.agent.stop()
    await mesh.agent.start()
    new = await mesh.agent.request("GET", "/v1/connect/ca/roots")
    # a dev agent keeps nothing: a new CA, so every cluster, listener and cert is new
    assert new["TrustDomain"] != old["TrustDomain"]
    # the Envoys keep serving their last config while the agent is away, then take the new one
    await _trust_root_everywhere(mesh, new)
    await eventually(mesh.succeeds, timeout=DEADLINE, what="traffic after the agent restart")
