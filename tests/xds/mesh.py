"""Test scaffolding for the xDS tests: a Connect CA, real Envoy processes, tiny apps.

Envoys run as asyncio subprocesses (the event loop is never blocked), bind only 127.0.0.1,
and are always killed on the way out, also when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from consulpy.agent.proxysnapshot import (
    Endpoint,
    ProxySnapshot,
    Upstream,
    default_target,
)
from consulpy.connect import ca, spiffe

# Envoy listener ports must be known before the listeners exist (their names and the peers'
# endpoints carry them), so the tests take them from the shared helper.
from consulpy.util.ports import free_port as free_port
from consulpy.xds.bootstrap import bootstrap_config, envoy_binary
from tests.helpers import eventually

DC = "dc1"


class Certs:
    """A cluster CA with its trust domain, issuing service leaves like the leader does."""

    def __init__(self, cluster_id: str = "") -> None:
        self.cluster_id = cluster_id or str(uuid.uuid4())
        self.trust_domain = spiffe.trust_domain(self.cluster_id)
        config = ca.normalize_config("consul", {})
        self.now = time.time()
        self.root = ca.generate_root(self.cluster_id, config, serial=1, now=self.now)
        self._serial = 1

    @property
    def roots(self) -> tuple[str, ...]:
        return (self.root["RootCert"],)

    def leaf(self, service: str) -> tuple[str, str]:
        """(certificate chain PEM, key PEM) for ``service`` in DC."""
        uri = spiffe.service_uri(self.trust_domain, DC, service)
        key_pem, csr_pem = ca.make_csr(uri)
        self._serial += 1
        issued = ca.sign_leaf(
            self.root,
            csr_pem,
            trust_domain=self.trust_domain,
            datacenter=DC,
            leaf_ttl_s=3600,
            serial=self._serial,
            now=self.now,
        )
        return issued["CertPEM"], key_pem


def _die_with_parent() -> list[str]:
    """A command prefix that makes Envoy get SIGTERM when the test process dies, however it
    dies, so no Envoy outlives an interrupted run. util-linux ``setpriv`` sets the signal
    and execs, which is safe here (a Python ``preexec_fn`` is not, with gRPC's threads)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


class Envoy:
    """One Envoy process bootstrapped against our ADS server."""

    def __init__(self, workdir: Path, name: str, bootstrap: dict[str, Any]) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.bootstrap = bootstrap
        self.proc: asyncio.subprocess.Process | None = None
        self.admin = ""

    @property
    def log_path(self) -> Path:
        return self.dir / "envoy.log"

    async def start(self) -> None:
        config = self.dir / "bootstrap.json"
        config.write_text(json.dumps(self.bootstrap))
        address_file = self.dir / "admin.address"
        address_file.unlink(missing_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            *_die_with_parent(),
            envoy_binary(),
            "-c",
            str(config),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--admin-address-path",
            str(address_file),
            "--log-level",
            "warning",
            "--log-path",
            str(self.log_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"envoy {self.name} exited:\n{self.logs()}")
            return address_file.exists() and address_file.read_text().strip() != ""

        await eventually(ready, timeout=20, what=f"envoy {self.name} admin address")
        self.admin = "http://" + address_file.read_text().strip()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def logs(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    async def get(self, path: str) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.admin + path) as resp:
            return await resp.text()

    async def get_json(self, path: str) -> Any:
        return json.loads(await self.get(path))


def sidecar_bootstrap(proxy_id: str, service: str, grpc_port: int, token: str = "") -> dict:
    return bootstrap_config(
        proxy_id,
        service,
        "127.0.0.1",
        grpc_port,
        admin_bind="127.0.0.1:0",
        token=token,
        datacenter=DC,
    )


async def start_app(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def api_app() -> web.Application:
    """The upstream service: answers with the headers it received (XFCC among them)."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"service": "api", "path": request.path, "headers": dict(request.headers)}
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    return app


def web_app(upstream_port: int) -> web.Application:
    """The downstream service: /call fetches api through its sidecar's upstream listener."""

    async def call(request: web.Request) -> web.Response:
        url = f"http://127.0.0.1:{upstream_port}/hello"
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
                return web.Response(status=r.status, body=await r.read())
        except aiohttp.ClientError as exc:
            return web.Response(status=599, text=f"upstream failed: {exc}")

    app = web.Application()
    app.router.add_get("/call", call)
    return app


def sidecar_snapshot(
    certs: Certs,
    service: str,
    *,
    public_port: int,
    local_port: int,
    protocol: str = "http",
    upstreams: tuple[Upstream, ...] = (),
    intentions: tuple[dict[str, Any], ...] = (),
    default_allow: bool = True,
    version: str = "1",
) -> ProxySnapshot:
    cert, key = certs.leaf(service)
    return ProxySnapshot(
        proxy_id=f"{service}-sidecar-proxy",
        service=service,
        datacenter=DC,
        trust_domain=certs.trust_domain,
        public_address="127.0.0.1",
        public_port=public_port,
        local_address="127.0.0.1",
        local_port=local_port,
        protocol=protocol,
        roots_pem=certs.roots,
        leaf_cert_pem=cert,
        leaf_key_pem=key,
        intentions=intentions,
        default_allow=default_allow,
        upstreams=upstreams,
        version=version,
    )


def upstream_to(
    certs: Certs,
    service: str,
    bind_port: int,
    endpoints: tuple[Endpoint, ...],
    protocol: str = "http",
) -> Upstream:
    return Upstream(
        id=service,
        destination=service,
        local_bind_port=bind_port,
        protocol=protocol,
        targets=(default_target(service, DC, certs.trust_domain, endpoints),),
    )


def deny(source: str, destination: str) -> dict[str, Any]:
    return {
        "SourceNS": "default",
        "SourceName": source,
        "DestinationNS": "default",
        "DestinationName": destination,
        "Action": "deny",
        "Precedence": 9 if source != "*" else 8,
    }
