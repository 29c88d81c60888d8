"""The agent keeps its services across restarts, loads them from config files, and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from consulpy.config import load_agent_config
from consulpy.runtime import Runtime

BASE = [
    "-bind=127.0.0.1",
    "-client=127.0.0.1",
    "-http-port=0",
    "-server-port=0",
    "-dns-port=-1",
    "-grpc-port=-1",
    "-log-level=warn",
]


def server_flags(tmp: Path, *extra: str) -> list[str]:
    return ["-server", "-bootstrap", "-node=persist", f"-data-dir={tmp / 'data'}", *BASE, *extra]


async def started(argv: list[str]) -> Runtime:
    runtime = Runtime(load_agent_config(argv), reload_config=lambda: load_agent_config(argv))
    await runtime.start()
    await runtime.agent.wait_ready()
    return runtime


def url(runtime: Runtime, path: str) -> str:
    host, port = runtime.agent.http_addresses[0]
    return f"http://{host}:{port}{path}"


async def test_services_and_ttl_state_survive_restart(tmp_path: Path) -> None:
    argv = server_flags(tmp_path)
    runtime = await started(argv)
    async with aiohttp.ClientSession() as s:
        body = {"Name": "db", "Port": 5432, "Check": {"TTL": "60s", "CheckID": "db-ttl"}}
        async with s.put(url(runtime, "/v1/agent/service/register"), json=body) as r:
            assert r.status == 200
        async with s.put(url(runtime, "/v1/agent/check/pass/db-ttl?note=fine")) as r:
            assert r.status == 200
        async with s.put(url(runtime, "/v1/kv/kept"), data=b"yes") as r:
            assert r.status == 200
    await runtime.stop()

    runtime = await started(argv)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(url(runtime, "/v1/agent/services")) as r:
                assert "db" in await r.json()
            async with s.get(url(runtime, "/v1/agent/checks")) as r:
                check = (await r.json())["db-ttl"]
            assert (check["Status"], check["Output"]) == ("passing", "fine")
            async with s.get(url(runtime, "/v1/kv/kept?raw")) as r:
                assert await r.read() == b"yes"  # the Raft log on disk brought it back
            async with s.get(url(runtime, "/v1/health/service/db?passing")) as r:
                assert len(await r.json()) == 1
    finally:
        await runtime.stop()


async def test_config_file_services_and_reload(tmp_path: Path) -> None:
    conf = tmp_path / "services.hcl"
    conf.write_text(
        'service {\n  name = "web"\n  port = 80\n  tags = ["v1"]\n'
        '  check {\n    ttl = "30s"\n  }\n}\n'
    )
    argv = server_flags(tmp_path, f"-config-file={conf}")
    runtime = await started(argv)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(url(runtime, "/v1/agent/services")) as r:
                services = await r.json()
            assert services["web"]["Tags"] == ["v1"] and services["web"]["Port"] == 80
            conf.write_text(json.dumps({"service": {"name": "web", "port": 81, "tags": ["v2"]}}))
            conf.rename(tmp_path / "services.json")
            runtime.agent.reload_config = lambda: load_agent_config(
                server_flags(tmp_path, f"-config-file={tmp_path / 'services.json'}")
            )
            async with s.put(url(runtime, "/v1/agent/reload")) as r:
                assert r.status == 200
            async with s.get(url(runtime, "/v1/agent/services")) as r:
                services = await r.json()
            assert services["web"]["Tags"] == ["v2"] and services["web"]["Port"] == 81
            async with s.get(url(runtime, "/v1/catalog/service/web")) as r:
                [row] = await r.json()
            assert row["ServicePort"] == 81
            async with s.get(url(runtime, "/v1/agent/checks")) as r:
                assert await r.json() == {}  # the old config check went with the old config
    finally:
        await runtime.stop()
    # config services are not persisted as API registrations
    state = json.loads((tmp_path / "data" / "agent-local-state.json").read_text())
    assert state["services"] == []
