"""Watches fire their handlers with Consul's payloads: the agent's `watches` config (script and
HTTP handlers) and `consulpy watch`, against a real `consulpy agent -dev` process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.cli.agentproc import AgentProcess, consulpy
from tests.helpers import eventually

DEV_FLAGS = (
    "-dev",
    "-node=watch-test",
    "-http-port=0",
    "-dns-port=-1",
    "-grpc-port=-1",
    "-serf-lan-port=0",
    "-serf-wan-port=0",
    "-server-port=0",
)

# Appends {"index": CONSUL_INDEX, "payload": <stdin JSON>} as one line to argv[1].
RECORDER = (
    "import json, os, sys\n"
    "data = json.load(sys.stdin)\n"
    "with open(sys.argv[1], 'a') as f:\n"
    "    f.write(json.dumps({'index': os.environ['CONSUL_INDEX'], 'payload': data}) + '\\n')\n"
)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def http(addr: str, method: str, path: str, body: Any = None) -> Any:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def script_watch(tmp: Path, out: str, **spec: Any) -> dict[str, Any]:
    recorder = tmp / "recorder.py"
    recorder.write_text(RECORDER)
    return {**spec, "args": [sys.executable, str(recorder), str(tmp / f"{out}.jsonl")]}


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, Path]]:
    tmp = tmp_path_factory.mktemp("watches")
    watches = [
        script_watch(tmp, "key", type="key", key="cfg/a"),
        script_watch(tmp, "keyprefix", type="keyprefix", prefix="cfg/"),
        script_watch(tmp, "services", type="services"),
        script_watch(tmp, "nodes", type="nodes"),
        script_watch(tmp, "service", type="service", service="web", passingonly=False),
        script_watch(tmp, "checks", type="checks", state="any"),
        script_watch(tmp, "event", type="event", name="deploy"),
    ]
    conf = tmp / "watches.json"
    conf.write_text(json.dumps({"watches": watches}))
    proc = AgentProcess(*DEV_FLAGS, f"-config-file={conf}").start()
    try:
        yield proc, tmp
    finally:
        proc.kill()


async def _until(path: Path, pred: Any, what: str) -> list[dict[str, Any]]:
    await eventually(lambda: any(pred(r["payload"]) for r in records(path)), timeout=20, what=what)
    return records(path)


async def test_key_and_keyprefix_watches_get_kv_objects(watched) -> None:
    agent, tmp = watched
    # the first result fires too: the key does not exist yet
    await eventually(lambda: records(tmp / "key.jsonl"), timeout=20, what="first key fire")
    assert records(tmp / "key.jsonl")[0]["payload"] is None
    http(agent.http_addr, "PUT", "/v1/kv/cfg/a", b"one")
    recs = await _until(
        tmp / "key.jsonl", lambda p: p and p["Key"] == "cfg/a", "key watch fired on the put"
    )
    fired = next(r for r in recs if r["payload"])
    assert fired["payload"]["Value"] == "b25l"  # base64 of "one", as /v1/kv answers
    assert int(fired["index"]) == fired["payload"]["ModifyIndex"]
    http(agent.http_addr, "PUT", "/v1/kv/cfg/b", b"two")
    await _until(
        tmp / "keyprefix.jsonl",
        lambda p: p and sorted(e["Key"] for e in p) == ["cfg/a", "cfg/b"],
        "keyprefix watch saw both keys",
    )


async def test_service_services_and_checks_watches(watched) -> None:
    agent, tmp = watched
    http(
        agent.http_addr,
        "PUT",
        "/v1/agent/service/register",
        {"Name": "web", "Tags": ["v1"], "Port": 80, "Check": {"TTL": "30s"}},
    )
    await _until(tmp / "services.jsonl", lambda p: p and p.get("web") == ["v1"], "services")
    recs = await _until(
        tmp / "service.jsonl", lambda p: p and p[0]["Service"]["Service"] == "web", "service"
    )
    entry = next(r for r in recs if r["payload"])["payload"][0]
    assert set(entry) == {"Node", "Service", "Checks"}
    await _until(
        tmp / "checks.jsonl",
        lambda p: p and any(c["ServiceName"] == "web" for c in p),
        "checks watch saw the service check",
    )
    await _until(tmp / "nodes.jsonl", lambda p: p and p[0]["Node"] == "watch-test", "nodes watch")


async def test_event_watch(watched) -> None:
    agent, tmp = watched
    http(agent.http_addr, "PUT", "/v1/event/fire/deploy", b"v2")
    recs = await _until(
        tmp / "event.jsonl", lambda p: p and p[-1]["Name"] == "deploy", "event watch"
    )
    event = next(r for r in recs if r["payload"])["payload"][-1]
    assert event["Payload"] == "djI="


async def test_http_handler_gets_body_and_headers(tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], Any]] = []

    async def handle(req: web.Request) -> web.Response:
        received.append((dict(req.headers), await req.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("PUT", "/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    watch = {
        "type": "key",
        "key": "hooked",
        "handler_type": "http",
        "http_handler_config": {
            "path": f"http://127.0.0.1:{port}/hook",
            "method": "PUT",
            "header": {"X-Test": ["yes"]},
            "timeout": "5s",
        },
    }
    conf = tmp_path / "w.hcl.json"
    conf.write_text(json.dumps({"watches": [watch]}))
    agent = AgentProcess(*DEV_FLAGS, f"-config-file={conf}")
    await asyncio.to_thread(agent.start)
    try:
        await asyncio.to_thread(http, agent.http_addr, "PUT", "/v1/kv/hooked", b"x")
        await eventually(lambda: any(b for _, b in received), timeout=20, what="http handler")
        headers, body = next((h, b) for h, b in received if b)
        assert body["Key"] == "hooked" and body["Value"] == "eA=="
        assert headers["X-Test"] == "yes"
        assert int(headers["X-Consul-Index"]) == body["ModifyIndex"]
    finally:
        agent.kill()
        await runner.cleanup()


def test_bad_watch_refuses_to_start(tmp_path: Path) -> None:
    conf = tmp_path / "bad.json"
    conf.write_text(json.dumps({"watches": [{"type": "key", "args": ["true"]}]}))
    out = subprocess.run(
        [sys.executable, "-m", "consulpy", "agent", *DEV_FLAGS, f"-config-file={conf}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "Must specify a single key to watch" in out.stdout + out.stderr


def test_cli_watch_prints_once_and_runs_handler(watched, tmp_path: Path) -> None:
    agent, _ = watched
    a = f"-http-addr={agent.http_addr}"
    http(agent.http_addr, "PUT", "/v1/kv/cli/x", b"hi")
    out = consulpy("watch", a, "-type=key", "-key=cli/x")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Value"] == "aGk="
    assert out.stdout.startswith("{\n    ")
    out = consulpy("watch", a)
    assert out.returncode == 1 and "Watch type must be specified" in out.stderr
    # with a handler: runs until the handler fails (exit 1)
    target = tmp_path / "seen"
    out = consulpy("watch", a, "-type=keyprefix", "-prefix=cli/", f"cat > {target}; exit 3")
    assert out.returncode == 1
    assert json.loads(target.read_text())[0]["Key"] == "cli/x"
