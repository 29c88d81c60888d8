"""The Connect CA through HTTP: roots, configuration, leaf certificates, rotation."""

from __future__ import annotations

import asyncio
import json
import time

from consulpy.connect import ca
from tests.conftest import HTTP
from tests.helpers import eventually


async def roots(http: HTTP) -> dict:
    async def ready() -> bool:
        return bool((await http.json("GET", "/v1/connect/ca/roots"))["Roots"])

    await eventually(ready, timeout=20)
    return await http.json("GET", "/v1/connect/ca/roots")


async def test_roots_and_configuration(http: HTTP) -> None:
    r = await roots(http)
    [root] = r["Roots"]
    assert r["ActiveRootID"] == root["ID"] and root["Active"] is True
    assert r["TrustDomain"].endswith(".consul")
    assert root["ExternalTrustDomain"] == r["TrustDomain"].removesuffix(".consul")
    assert root["Name"] == "Consul CA Primary Cert" and root["PrivateKeyType"] == "ec"
    assert "SigningKey" not in root and root["IntermediateCerts"] is None
    assert root["RootCert"].startswith("-----BEGIN CERTIFICATE-----")
    status, headers, body = await http.get("/v1/connect/ca/roots?pem=true")
    assert headers["Content-Type"].startswith("application/pem-certificate-chain")
    assert body.decode() == root["RootCert"]
    assert await http.json("GET", "/v1/agent/connect/ca/roots") == r
    config = await http.json("GET", "/v1/connect/ca/configuration")
    assert config["Provider"] == "consul" and config["Config"]["LeafCertTTL"] == "72h"
    status, _, raw = await http.put(
        "/v1/connect/ca/configuration",
        json.dumps({"Provider": "consul", "Config": {"LeafCertTTL": "10m"}}),
    )
    assert status == 500 and b"leaf cert TTL must be greater or equal than 1h0m0s" in raw
    status, _, raw = await http.put(
        "/v1/connect/ca/configuration", json.dumps({"Provider": "vault", "Config": {}})
    )
    assert status == 500
    assert await http.json("GET", "/v1/connect/ca/configuration") == config


async def test_leaf_verifies_and_is_cached(http: HTTP) -> None:
    r = await roots(http)
    leaf = await http.json("GET", "/v1/agent/connect/ca/leaf/web")
    assert leaf["Service"] == "web"
    assert leaf["ServiceURI"] == f"spiffe://{r['TrustDomain']}/ns/default/dc/dc1/svc/web"
    assert leaf["PrivateKeyPEM"].startswith("-----BEGIN EC PRIVATE KEY-----")
    uri = ca.verify_leaf(leaf["CertPEM"], [x["RootCert"] for x in r["Roots"]], now=time.time())
    assert uri == leaf["ServiceURI"]
    again = await http.json("GET", "/v1/agent/connect/ca/leaf/web")
    assert again == leaf  # cached: same key, same certificate
    other = await http.json("GET", "/v1/agent/connect/ca/leaf/api")
    assert other["SerialNumber"] != leaf["SerialNumber"]


async def test_rotation_keeps_old_leaves_valid_and_renews(http: HTTP, agent) -> None:
    old_roots = await roots(http)
    agent.agent.leaf_certs.root_change_jitter = 0.0  # Consul spreads renewals over 30 s
    old_leaf = await http.json("GET", "/v1/agent/connect/ca/leaf/web")
    index = old_leaf["ModifyIndex"]
    pending = asyncio.ensure_future(
        http.json("GET", f"/v1/agent/connect/ca/leaf/web?index={index}&wait=30s")
    )
    status, _, raw = await http.put(
        "/v1/connect/ca/configuration",
        json.dumps(
            {"Provider": "consul", "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384}}
        ),
    )
    assert status == 200, raw
    new_roots = await http.json("GET", "/v1/connect/ca/roots")
    assert len(new_roots["Roots"]) == 2
    active = next(x for x in new_roots["Roots"] if x["Active"])
    assert active["ID"] == new_roots["ActiveRootID"] != old_roots["ActiveRootID"]
    assert len(active["IntermediateCerts"]) == 1  # cross-signed by the old root
    new_leaf = await asyncio.wait_for(pending, 30)
    assert new_leaf["ModifyIndex"] > index and new_leaf["CertPEM"] != old_leaf["CertPEM"]
    now = time.time()
    old_pem = [x["RootCert"] for x in old_roots["Roots"]]
    all_pems = [x["RootCert"] for x in new_roots["Roots"]]
    # a peer that only knows the old root accepts the new leaf (through the cross-signature),
    # and old leaves keep verifying during the overlap
    assert ca.verify_leaf(new_leaf["CertPEM"], old_pem, now=now)
    assert ca.verify_leaf(new_leaf["CertPEM"], [active["RootCert"]], now=now)
    assert ca.verify_leaf(old_leaf["CertPEM"], all_pems, now=now)


async def test_a_configuration_read_waits_for_a_new_leaders_ca(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A leader creates the CA just after its election; a read in that window waits for it
    instead of answering 500 (py-consul's suite met that window once uvloop made it shorter).
    Here the CA is created only after a read has found none."""
    import aiohttp

    from consulpy.server.connect_ca import CAManager
    from consulpy.testing import DevAgent

    gate = asyncio.Event()
    original = CAManager.bootstrap

    async def gated(self: CAManager) -> None:
        await gate.wait()
        await original(self)

    monkeypatch.setattr(CAManager, "bootstrap", gated)
    async with DevAgent() as dev:
        assert dev.agent is not None
        delegate = dev.agent.delegate
        inner = delegate.read

        async def read(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
            meta, value = await inner(name, *args, **kwargs)
            if name == "ConnectCA.Config" and value is None:
                gate.set()
            return meta, value

        monkeypatch.setattr(delegate, "read", read)
        url = f"{dev.url}/v1/connect/ca/configuration"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200, await resp.text()
            config = await resp.json()
    assert gate.is_set() and config["Provider"] == "consul"
