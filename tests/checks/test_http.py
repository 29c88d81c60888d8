"""HTTP checks against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from consulpy.agent.checks import CheckTLS, make_runner
from consulpy.util.ports import refusing_port
from tests.checks.support import Recorder, ZeroRandom, fast, make_tls
from tests.helpers import eventually


class Server:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[dict[str, str]] = []
        self.sni: list[str | None] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ok", self.ok)
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/redirect/{n}", self.redirect)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/big", self.big)
        app.router.add_get("/slowbody", self.slowbody)
        app.router.add_get("/toggle", self.toggle)
        return app

    code = 200
    hits = 0

    async def toggle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=self.code, text=f"hit {self.hits}")

    async def ok(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "host": request.headers.get("Host", ""),
                "user-agent": request.headers.get("User-Agent", ""),
                "accept": request.headers.get("Accept", ""),
                "x-multi": ",".join(request.headers.getall("X-Multi", [])),
                "body": (await request.read()).decode(),
                "connection": request.headers.get("Connection", ""),
            }
        )
        return web.Response(text="ok")

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status body")

    async def redirect(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = "/ok" if n == 0 else f"/redirect/{n - 1}"
        raise web.HTTPFound(target)

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="late")

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 5000 + b"THE-END")

    async def slowbody(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"partial")
        await self.release.wait()
        return resp


async def _serve(srv: Server, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(srv.app(), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    srv.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    return runner


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    runner = await _serve(srv)
    yield srv
    srv.release.set()
    await runner.cleanup()


async def run_once(body: dict, **kw) -> tuple[str, str]:
    """Register, wait for the first result, stop."""
    rec = Recorder()
    defn = fast({"Name": "h", "Interval": "10s", **body})
    runner = make_runner("h", defn, rec, rng=ZeroRandom(), **kw)
    await runner.start()
    try:
        return await rec.first()
    finally:
        await runner.stop()


async def test_2xx_is_passing_with_consul_output(server: Server) -> None:
    status, output = await run_once({"HTTP": server.url + "/ok"})
    assert status == "passing"
    assert output == f"HTTP GET {server.url}/ok: 200 OK Output: ok"
    seen = server.seen[0]
    assert seen["user-agent"] == "Consul Health Check"
    assert seen["accept"] == "text/plain, text/*, */*"
    assert seen["connection"].lower() == "close"  # no keep-alive between runs


@pytest.mark.parametrize(
    ("code", "status", "line"),
    [
        (429, "warning", "429 Too Many Requests"),
        (500, "critical", "500 Internal Server Error"),
        (404, "critical", "404 Not Found"),
        (204, "passing", "204 No Content"),
    ],
)
async def test_status_code_mapping(server: Server, code: int, status: str, line: str) -> None:
    url = f"{server.url}/status/{code}"
    got_status, output = await run_once({"HTTP": url})
    assert got_status == status
    assert output.startswith(f"HTTP GET {url}: {line} Output: ")


async def test_method_headers_host_and_body(server: Server) -> None:
    status, output = await run_once(
        {
            "HTTP": server.url + "/ok",
            "Method": "post",
            "Header": {"Host": ["svc.internal"], "X-Multi": ["a", "b"], "User-Agent": ["me"]},
            "Body": '{"probe": true}',
        }
    )
    assert status == "passing" and output.startswith("HTTP POST ")
    seen = server.seen[0]
    assert seen["method"] == "POST"
    assert seen["host"] == "svc.internal"
    assert seen["x-multi"] == "a,b"
    assert seen["user-agent"] == "me"
    assert seen["body"] == '{"probe": true}'


async def test_redirects_followed_unless_disabled(server: Server) -> None:
    status, output = await run_once({"HTTP": server.url + "/redirect/2"})
    assert (status, output) == ("passing", f"HTTP GET {server.url}/redirect/2: 200 OK Output: ok")
    status, output = await run_once({"HTTP": server.url + "/redirect/2", "DisableRedirects": True})
    assert status == "critical"
    assert output.startswith(f"HTTP GET {server.url}/redirect/2: 302 Found Output: ")


async def test_redirect_limit(server: Server) -> None:
    await run_once({"HTTP": server.url + "/redirect/9"})  # 10 redirects: allowed
    assert server.seen, "ten redirects are followed"
    status, output = await run_once({"HTTP": server.url + "/redirect/10"})
    assert status == "critical"
    assert output == f'Get "{server.url}/ok": stopped after 10 redirects'


async def test_timeout_is_critical(server: Server) -> None:
    status, output = await run_once({"HTTP": server.url + "/slow", "Timeout": "200ms"})
    assert status == "critical"
    assert output == (
        f'Get "{server.url}/slow": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)"
    )


async def test_timeout_while_reading_body_keeps_what_arrived(server: Server) -> None:
    status, output = await run_once({"HTTP": server.url + "/slowbody", "Timeout": "300ms"})
    assert status == "passing"
    assert output == f"HTTP GET {server.url}/slowbody: 200 OK Output: partial"


async def test_big_body_keeps_the_last_bytes(server: Server) -> None:
    _status, output = await run_once({"HTTP": server.url + "/big", "OutputMaxSize": 10})
    assert output == f"HTTP GET {server.url}/big: 200 OK Output: aaaTHE-END"
    _status, output = await run_once({"HTTP": server.url + "/big"})
    assert output.endswith("Output: " + "a" * (4096 - 7) + "THE-END")


async def test_connection_refused_reads_like_go() -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/health"
        status, output = await run_once({"HTTP": url})
    assert status == "critical"
    assert output == f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'


async def test_unsupported_scheme() -> None:
    status, output = await run_once({"HTTP": "ftp://127.0.0.1/x"})
    assert (status, output) == (
        "critical",
        'Get "ftp://127.0.0.1/x": unsupported protocol scheme "ftp"',
    )


async def test_https_verification_skip_verify_and_server_name(tmp_path: Path) -> None:
    tls = make_tls(tmp_path, ("check.example",))
    srv = Server()
    runner = await _serve(srv, tls.server_context())
    try:
        url = srv.url + "/ok"
        # self-made CA, not trusted by the system roots
        status, output = await run_once({"HTTP": url})
        assert status == "critical"
        assert "tls: failed to verify certificate: x509: " in output
        assert (await run_once({"HTTP": url, "TLSSkipVerify": True}))[0] == "passing"
        trusted = CheckTLS(ca_file=str(tls.ca_file))
        # trusted CA but the URL host (127.0.0.1) is not in the certificate ...
        status, output = await run_once({"HTTP": url}, agent_tls=trusted)
        assert status == "critical" and "x509: certificate is not valid" in output
        # ... unless TLSServerName names one that is
        status, output = await run_once(
            {"HTTP": url, "TLSServerName": "check.example"}, agent_tls=trusted
        )
        assert (status, output) == ("passing", f"HTTP GET {url}: 200 OK Output: ok")
    finally:
        srv.release.set()
        await runner.cleanup()


async def test_runs_repeat_and_only_changes_are_delivered(server: Server) -> None:
    rec = Recorder()
    runner = make_runner(
        "h",
        fast({"Name": "h", "HTTP": server.url + "/ok", "Interval": "20ms"}),
        rec,
        rng=ZeroRandom(),
    )
    await runner.start()
    try:
        await rec.first()
        await eventually(lambda: len(server.seen) >= 4, interval=0.01)
        assert len(rec.updates) == 1  # same status and output each time
    finally:
        await runner.stop()


async def test_thresholds_on_a_live_endpoint(server: Server) -> None:
    """passing -> (1 failure) warning -> (2 failures) critical -> (2 successes) passing."""
    rec = Recorder()
    defn = fast(
        {
            "Name": "h",
            "HTTP": server.url + "/toggle",
            "Interval": "20ms",
            "SuccessBeforePassing": 2,
            "FailuresBeforeWarning": 1,
            "FailuresBeforeCritical": 2,
        }
    )
    runner = make_runner("h", defn, rec, rng=ZeroRandom())
    await runner.start()
    try:
        assert (await rec.first())[0] == "passing"
        server.code = 503
        await rec.wait(lambda u: u[-1][1] == "critical")
        server.code = 200
        await rec.wait(lambda u: u[-1][1] == "passing")
    finally:
        await runner.stop()
    assert _collapse(rec.statuses) == ["passing", "warning", "critical", "passing"]
    outputs = [o for _, s, o in rec.updates if s == "warning"]
    assert outputs[0].startswith(f"HTTP GET {server.url}/toggle: 503 Service Unavailable")


def _collapse(statuses: list[str]) -> list[str]:
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
