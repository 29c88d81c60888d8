"""The demo services in-process: api's answer, web's answer through an upstream, web's 502
when the upstream fails, and the XFCC parsing that shows who called api."""

from __future__ import annotations

import socket

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consulpy.demo.apps import api_app, caller_identity, web_app
from tests.cli.agentproc import consulpy

XFCC = (
    'By=spiffe://t.consul/ns/default/dc/dc1/svc/api;Hash=ab;Cert="x";'
    'Subject="";URI=spiffe://t.consul/ns/default/dc/dc1/svc/web;DNS=web'
)


def test_caller_identity() -> None:
    assert caller_identity(XFCC) == "spiffe://t.consul/ns/default/dc/dc1/svc/web"
    assert caller_identity("URI=spiffe://a/svc/x,By=b;URI=spiffe://a/svc/y") == "spiffe://a/svc/y"
    assert caller_identity("") is None
    assert caller_identity("By=x;Hash=y") is None


async def test_api_answers_who_it_is_and_who_called() -> None:
    async with TestClient(TestServer(api_app(instance="api-1"))) as client:
        resp = await client.get("/some/path?x=1", headers={"X-Forwarded-Client-Cert": XFCC})
        assert resp.status == 200
        body = await resp.json()
        assert body["service"] == "api" and body["instance"] == "api-1"
        assert body["caller"].endswith("/svc/web")
        assert body["path"] == "/some/path?x=1"
        assert body["peer"] == "127.0.0.1"
        assert (await client.get("/health")).status == 200


async def test_web_wraps_what_its_upstream_said() -> None:
    async with TestServer(api_app(instance="api-1")) as api:
        upstream = str(api.make_url("/"))
        async with TestClient(TestServer(web_app(upstream, instance="web-1"))) as client:
            resp = await client.get("/")
            assert resp.status == 200
            body = await resp.json()
            assert body["service"] == "web" and body["instance"] == "web-1"
            assert body["upstream"]["service"] == "api"
            assert (await client.get("/health")).status == 200


async def test_web_answers_502_with_the_reason_when_the_upstream_says_no() -> None:
    async def denied(_request: web.Request) -> web.Response:
        return web.Response(status=403, text="RBAC: access denied")

    app = web.Application()
    app.router.add_get("/", denied)
    async with TestServer(app) as upstream:
        client = TestClient(TestServer(web_app(str(upstream.make_url("/")))))
        async with client:
            resp = await client.get("/")
            assert resp.status == 502
            text = await resp.text()
            assert text.startswith("web: the call to the upstream at http://")
            assert "answered 403: RBAC: access denied" in text


async def test_web_answers_502_when_nothing_listens_upstream() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when we use it
    async with TestClient(TestServer(web_app(f"http://127.0.0.1:{port}"))) as client:
        resp = await client.get("/")
        assert resp.status == 502
        assert f"http://127.0.0.1:{port}/ failed: ClientConnectorError" in await resp.text()


def test_probe_exit_status() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = consulpy("demo", "probe", f"http://127.0.0.1:{port}/health")
    assert out.returncode == 1 and "Connection refused" in out.stderr
    out = consulpy("demo", "web", "--port=0")
    assert out.returncode == 1 and "--upstream" in out.stderr
