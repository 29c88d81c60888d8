"""The jwt auth method with `JWKSURL`: keys the test generates, served as a JWKS document by a
small aiohttp server on 127.0.0.1; login works, a key rotation is picked up on the first token
with the new `kid`, and a token signed by a key the set does not hold is refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.acl_state.conftest import ACLHTTP


def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: Any, kid: str) -> dict[str, Any]:
    doc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return dict(doc, kid=kid, use="sig", alg="RS256")


def signed(key: Any, kid: str, **claims: Any) -> str:
    body = {"iss": "https://issuer.test", "aud": "consul", "exp": time.time() + 300}
    return jwt.encode(
        {**body, "service": "web", **claims}, key, algorithm="RS256", headers={"kid": kid}
    )


class JWKSServer:
    """Serves whatever key set the test puts in `keys` and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.url = ""

    async def handle(self, _req: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.keys})


@pytest.fixture
async def jwks() -> AsyncIterator[JWKSServer]:
    server = JWKSServer()
    app = web.Application()
    app.router.add_get("/jwks", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/jwks"
    yield server
    await runner.cleanup()


async def test_jwks_login_rotation_and_unknown_key(api: ACLHTTP, jwks: JWKSServer) -> None:
    first, second, stranger = rsa_key(), rsa_key(), rsa_key()
    jwks.keys = [jwk(first, "k1")]
    await api.ok(
        "PUT",
        "/v1/acl/auth-method",
        {
            "Name": "wi",
            "Type": "jwt",
            "Config": {
                "JWKSURL": jwks.url,
                "BoundIssuer": "https://issuer.test",
                "BoundAudiences": ["consul"],
                "ClaimMappings": {"service": "service"},
            },
        },
    )
    await api.ok(
        "PUT",
        "/v1/acl/binding-rule",
        {"AuthMethod": "wi", "BindType": "service", "BindName": "${value.service}"},
    )
    got = await api.ok(
        "POST", "/v1/acl/login", {"AuthMethod": "wi", "BearerToken": signed(first, "k1")}
    )
    assert got["ServiceIdentities"] == [{"ServiceName": "web"}]
    again = await api.ok(
        "POST", "/v1/acl/login", {"AuthMethod": "wi", "BearerToken": signed(first, "k1")}
    )
    assert again["AuthMethod"] == "wi" and jwks.fetches == 1  # served from the cache

    # The issuer rotates: the first token with the new kid makes the server refetch.
    jwks.keys = [jwk(second, "k2")]
    rotated = await api.ok(
        "POST", "/v1/acl/login", {"AuthMethod": "wi", "BearerToken": signed(second, "k2")}
    )
    assert rotated["ServiceIdentities"] == [{"ServiceName": "web"}] and jwks.fetches == 2

    # A key the set does not hold under that kid: refused, with the reason.
    status, body = await api.fails(
        "POST", "/v1/acl/login", {"AuthMethod": "wi", "BearerToken": signed(stranger, "k2")}
    )
    assert status == 403 and "signature" in body, body
    status, body = await api.fails(
        "POST", "/v1/acl/login", {"AuthMethod": "wi", "BearerToken": signed(stranger, "k9")}
    )
    assert status == 403 and "signature" in body, body


async def test_jwks_unreachable_is_a_clear_refusal(api: ACLHTTP, jwks: JWKSServer) -> None:
    await api.ok(
        "PUT",
        "/v1/acl/auth-method",
        {"Name": "gone", "Type": "jwt", "Config": {"JWKSURL": jwks.url + "-missing"}},
    )
    status, body = await api.fails(
        "POST", "/v1/acl/login", {"AuthMethod": "gone", "BearerToken": signed(rsa_key(), "k1")}
    )
    assert status == 403 and "fetching keys from JWKSURL: HTTP 404" in body, body
