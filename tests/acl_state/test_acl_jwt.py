"""The jwt auth method: login with keys the test generates, binding rules with selectors,
clear refusals for a bad signature, a wrong audience or issuer, an expired token; logout."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.acl_state.conftest import ACLHTTP


def keypair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


KEY, PUB = keypair()
OTHER, _ = keypair()


def token(key: Any = KEY, **claims: Any) -> str:
    body = {
        "iss": "https://issuer.test",
        "aud": "consul",
        "sub": "workload",
        "exp": time.time() + 300,
        "service": "web",
        "groups": ["dev", "ops"],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256")


@pytest.fixture
async def method(api: ACLHTTP) -> str:
    await api.ok(
        "PUT",
        "/v1/acl/auth-method",
        {
            "Name": "nomad",
            "Type": "jwt",
            "MaxTokenTTL": "10m",
            "TokenLocality": "global",
            "Config": {
                "JWTValidationPubKeys": [PUB],
                "BoundIssuer": "https://issuer.test",
                "BoundAudiences": ["consul"],
                "ClaimMappings": {"service": "service"},
                "ListClaimMappings": {"groups": "groups"},
            },
        },
    )
    await api.ok("PUT", "/v1/acl/policy", {"Name": "ops-policy"})
    await api.ok(
        "PUT",
        "/v1/acl/binding-rule",
        {"AuthMethod": "nomad", "BindType": "service", "BindName": "${value.service}"},
    )
    await api.ok(
        "PUT",
        "/v1/acl/binding-rule",
        {
            "AuthMethod": "nomad",
            "BindType": "policy",
            "BindName": "ops-policy",
            "Selector": '"ops" in list.groups',
        },
    )
    await api.ok(
        "PUT",
        "/v1/acl/binding-rule",
        {
            "AuthMethod": "nomad",
            "BindType": "role",
            "BindName": "admins",
            "Selector": '"admin" in list.groups',
        },
    )
    return "nomad"


async def test_login_scoped_token_and_logout(api: ACLHTTP, method: str) -> None:
    t = await api.ok("POST", "/v1/acl/login", {"AuthMethod": method, "BearerToken": token()})
    assert t["AuthMethod"] == "nomad" and t["Local"] is False
    assert t["ServiceIdentities"] == [{"ServiceName": "web"}]
    assert [p["Name"] for p in t["Policies"]] == ["ops-policy"]
    assert "Roles" not in t  # the admins role does not match (and does not exist)
    assert t["ExpirationTTL"] == "10m0s" and "ExpirationTime" in t
    listed = await api.ok("GET", "/v1/acl/tokens?authmethod=nomad")
    assert [x["AccessorID"] for x in listed] == [t["AccessorID"]]
    status, body = await api.fails(
        "PUT", f"/v1/acl/token/{t['AccessorID']}/clone", {"Description": "x"}
    )
    assert "auth method" in body
    # Logout with the login token revokes it.
    status, _, _ = await api.request(
        "POST", "/v1/acl/logout", headers={"X-Consul-Token": t["SecretID"]}
    )
    assert status == 200
    status, _, body = await api.request(
        "GET", "/v1/acl/token/self", headers={"X-Consul-Token": t["SecretID"]}
    )
    assert (status, body) == (403, b"ACL not found")
    # A token not issued by a login cannot log out.
    assert (await api.fails("POST", "/v1/acl/logout"))[0] == 403


async def test_login_refusals(api: ACLHTTP, method: str) -> None:
    cases = [
        (token(OTHER), "failed to verify the bearer token's signature"),
        (token(aud="other"), "invalid audience (aud) claim"),
        (token(iss="https://evil.test"), "invalid issuer (iss) claim"),
        (token(exp=time.time() - 3600), "invalid expiration time (exp) claim: token is expired"),
        ("not-a-jwt", "failed to decode the bearer token"),
    ]
    for bearer, text in cases:
        status, body = await api.fails(
            "POST", "/v1/acl/login", {"AuthMethod": method, "BearerToken": bearer}
        )
        assert status == 403 and text in body, (text, body)
    # Nothing matched: no token.
    status, body = await api.fails(
        "POST", "/v1/acl/login", {"AuthMethod": "ghost", "BearerToken": token()}
    )
    assert "not found" in body
    status, body = await api.fails("POST", "/v1/acl/login", {"AuthMethod": method})
    assert (status, body) == (400, "Missing bearer token")
    assert await api.ok("GET", "/v1/acl/tokens?authmethod=nomad") == []


async def test_clock_skew_leeway(api: ACLHTTP, method: str) -> None:
    # Expired 30 s ago: inside the default 60 s leeway.
    t = await api.ok(
        "POST",
        "/v1/acl/login",
        {"AuthMethod": method, "BearerToken": token(exp=time.time() - 30)},
    )
    assert t["AuthMethod"] == "nomad"


async def test_method_config_validation(api: ACLHTTP) -> None:
    for config, text in [
        ({}, "exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL'"),
        ({"JWKSURL": "ftp://x"}, "JWKSURL must be an http or https URL"),
        ({"JWKSURL": "https://x", "JWKSCACert": "junk"}, "JWKSCACert is not a valid PEM"),
        ({"JWKSURL": "https://x", "JWTValidationPubKeys": [PUB]}, "exactly one of"),
        ({"OIDCDiscoveryURL": "https://x"}, "OIDCDiscoveryURL is not supported"),
        ({"JWTValidationPubKeys": ["junk"]}, "error parsing public key"),
        ({"JWTValidationPubKeys": [PUB], "Bogus": 1}, "unknown jwt auth method config fields"),
    ]:
        _status, body = await api.fails(
            "PUT", "/v1/acl/auth-method", {"Name": "m", "Type": "jwt", "Config": config}
        )
        assert text in body, (config, body)
