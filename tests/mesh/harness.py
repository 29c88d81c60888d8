"""A real mesh on 127.0.0.1: a `consulpy agent -dev` process, Envoys started with
`consulpy connect envoy -sidecar-for ...`, and tiny aiohttp apps in the test's loop.

Everything is a subprocess driven from asyncio (the loop never blocks), every port comes from
the OS, and every process is killed on the way out (also through `setpriv --pdeathsig` when
the test process itself dies).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from consulpy.util.ports import free_ports as free_ports  # Envoy listener ports
from tests.helpers import eventually
from tests.xds.mesh import Envoy, _die_with_parent

BANNER_HTTP = re.compile(r"HTTP: (\d+\.\d+\.\d+\.\d+:\d+)")
BANNER_GRPC = re.compile(r"gRPC: (-?\d+)")


class AgentProc:
    """`consulpy agent -dev` with services and config entries from a config directory."""

    def __init__(
        self,
        workdir: Path,
        config_dir: Path,
        grpc_port: int = 0,
        http_port: int = 0,
        dns_port: int = -1,
        extra: list[str] | None = None,
    ) -> None:
        """Ports 0 (the default) let the agent bind what the OS gives and report it in its
        banner; the ports it got are kept for a restart. DNS is off unless given a port.
        `extra` flags come last (so they win over the defaults here, e.g. `-node`,
        `-serf-wan-port`)."""
        self.workdir = workdir
        self.dns_port = dns_port
        self.config_dir = config_dir
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.extra = list(extra or [])
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.http = ""
        self._pump: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60) -> None:
        self.lines = []
        self.proc = await asyncio.create_subprocess_exec(
            *_die_with_parent(),
            sys.executable,
            "-m",
            "consulpy",
            "agent",
            "-dev",
            "-node=mesh",
            f"-http-port={self.http_port}",
            f"-grpc-port={self.grpc_port}",
            f"-dns-port={self.dns_port}",
            "-serf-lan-port=0",
            "-serf-wan-port=-1",
            "-server-port=0",
            f"-config-dir={self.config_dir}",
            *self.extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        banner: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._read(banner))
        line = await asyncio.wait_for(banner, timeout)
        http = BANNER_HTTP.search(line)
        grpc_port = BANNER_GRPC.search(line)
        assert http and grpc_port, line
        assert self.grpc_port in (0, int(grpc_port.group(1))), line
        self.http = http.group(1)
        self.http_port, self.grpc_port = int(self.http.rsplit(":", 1)[1]), int(grpc_port.group(1))
        await eventually(self._ready, timeout=timeout, what="agent leader and catalog")

    async def _read(self, banner: asyncio.Future[str]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if not banner.done() and "Client Addr:" in line:
                banner.set_result(line)
        if not banner.done():
            banner.set_exception(AssertionError("agent exited:\n" + self.output()))

    async def _ready(self) -> bool:
        try:
            leader = await self.request("GET", "/v1/status/leader")
            roots = await self.request("GET", "/v1/connect/ca/roots")
        except (aiohttp.ClientError, AssertionError):
            return False
        return bool(leader) and bool(roots and roots.get("Roots"))

    def output(self) -> str:
        return "".join(self.lines[-200:])

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body)
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, f"http://{self.http}{path}", data=data) as resp,
        ):
            text = await resp.text()
            assert resp.status == 200, f"{method} {path}: {resp.status} {text}"
            return json.loads(text) if text else None

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._pump is not None:
            await self._pump


class Sidecar(Envoy):
    """An Envoy started the way a user starts one: `consulpy connect envoy -sidecar-for`."""

    def __init__(self, workdir: Path, service_id: str, agent: AgentProc) -> None:
        super().__init__(workdir, f"envoy-{service_id}", bootstrap={})
        self.service_id = service_id
        self.agent = agent

    async def start(self) -> None:
        address_file = self.dir / "admin.address"
        address_file.unlink(missing_ok=True)
        with open(self.dir / "stderr.log", "ab") as stderr:
            self.proc = await self._spawn(stderr.fileno())

        def ready() -> bool:
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"sidecar for {self.service_id} exited:\n{self.logs()}")
            return address_file.exists() and address_file.read_text().strip() != ""

        await eventually(ready, timeout=30, what=f"envoy for {self.service_id}")
        self.admin = "http://" + address_file.read_text().strip()

    def connect_flags(self) -> list[str]:
        """What follows `consulpy connect envoy` (gateways override it)."""
        return ["-sidecar-for", self.service_id]

    async def _spawn(self, stderr: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *_die_with_parent(),
            sys.executable,
            "-m",
            "consulpy",
            "connect",
            "envoy",
            *self.connect_flags(),
            "-http-addr",
            self.agent.http,
            "-admin-bind",
            "127.0.0.1:0",
            "--",
            "--concurrency",
            "1",
            "--log-level",
            "warning",
            "--log-path",
            str(self.log_path),
            "--admin-address-path",
            str(self.dir / "admin.address"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )

    def logs(self) -> str:
        try:
            stderr = (self.dir / "stderr.log").read_text()[-3000:]
        except OSError:
            stderr = ""
        return f"{stderr}\n{super().logs()}"

    async def healthy_endpoints(self, cluster_prefix: str) -> set[int]:
        """Ports of the healthy hosts of clusters whose name starts with ``cluster_prefix``."""
        data = json.loads(await self.get("/clusters?format=json"))
        ports: set[int] = set()
        for cluster in data.get("cluster_statuses", []):
            if not cluster["name"].startswith(cluster_prefix):
                continue
            for host in cluster.get("host_statuses", []):
                health = host.get("health_status", {})
                if health.get("eds_health_status", "HEALTHY") == "HEALTHY":
                    ports.add(host["address"]["socket_address"]["port_value"])
        return ports


class Gateway(Sidecar):
    """A gateway's Envoy, registered and started the way a user does it:
    `consulpy connect envoy -gateway=<kind> -register -service <name> -address <addr>`."""

    def __init__(self, workdir: Path, kind: str, name: str, address: str, agent: AgentProc) -> None:
        super().__init__(workdir, name, agent)
        self.kind = kind
        self.address = address

    def connect_flags(self) -> list[str]:
        return [
            f"-gateway={self.kind}",
            "-register",
            "-service",
            self.service_id,
            "-address",
            self.address,
        ]


class ApiApp:
    """An `api` instance: echoes the request headers; /health can be made to fail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        self.app = web.Application()
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/{tail:.*}", self._echo)

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 500, text=self.name)

    async def _echo(self, request: web.Request) -> web.Response:
        return web.json_response({"instance": self.name, "headers": dict(request.headers)})


def web_app(upstream_port: int) -> web.Application:
    """The `web` service: /call fetches api through its sidecar's upstream listener."""

    async def call(_request: web.Request) -> web.Response:
        timeout = aiohttp.ClientTimeout(total=5)
        url = f"http://127.0.0.1:{upstream_port}/hello"
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
                return web.Response(status=r.status, body=await r.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.Response(status=599, text=f"upstream failed: {exc!r}")

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/call", call)
    app.router.add_get("/health", health)
    return app


def service_file(
    name: str,
    sid: str,
    port: int,
    public_port: int,
    upstreams: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A service definition (config-file spelling) with a sidecar whose checks run every
    second: the public listener is up, and the service itself is healthy (alias)."""
    return {
        "service": {
            "name": name,
            "id": sid,
            "port": port,
            "check": {"http": f"http://127.0.0.1:{port}/health", "interval": "1s"},
            "connect": {
                "sidecar_service": {
                    "port": public_port,
                    "checks": [
                        {
                            "name": "sidecar listening",
                            "tcp": f"127.0.0.1:{public_port}",
                            "interval": "1s",
                        },
                        {"name": "service healthy", "alias_service": sid},
                    ],
                    "proxy": {"upstreams": upstreams or []},
                }
            },
        }
    }
