"""The primary datacenter and replication: one server per datacenter, ACLs on (default deny),
Connect on. dc1 is the primary; dc2's leader replicates config entries (intentions too), ACL
policies, roles and global tokens, and gets its CA intermediate signed by dc1. Writes of
these in dc2 land in dc1 and come back. dc1 stopped: dc2 keeps serving what it has and its
replication status reports the error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.cluster.harness import Node, eventually
from tests.wan.harness import Federation, federation

MGMT = "3f0b0a4e-5a49-4f43-9d4b-0b5f1c1d9a01"
ACL = (
    '-hcl=acl { enabled = true default_policy = "deny" enable_token_replication = true '
    f'tokens {{ replication = "{MGMT}" agent = "{MGMT}" }} }}'
)
ACL_PRIMARY = f'-hcl=acl {{ tokens {{ initial_management = "{MGMT}" }} }}'
CONNECT = "-hcl=connect { enabled = true }"
PRIMARY = '-hcl=primary_datacenter = "dc1"'
TIMEOUT = 90


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    f = federation(Path(tmp_path_factory.mktemp("repl")), servers=1, clients=0)
    f.dc1.servers[0].extra += [ACL, ACL_PRIMARY, CONNECT, PRIMARY]
    f.dc2.servers[0].extra += [ACL, CONNECT, PRIMARY]
    with f.running():
        yield f


def call(node: Node, method: str, path: str, body: Any = None, token: str = MGMT) -> Any:
    sep = "&" if "?" in path else "?"
    data = None if body is None else json.dumps(body).encode()
    status, _, raw = node.request(method, f"{path}{sep}token={token}", data)
    return status, (json.loads(raw) if raw and raw[:1] in b"[{tn" else raw.decode())


def ok(node: Node, method: str, path: str, body: Any = None, token: str = MGMT) -> Any:
    status, result = call(node, method, path, body, token)
    assert status == 200, (node.name, path, status, result)
    return result


def entry(node: Node, kind: str, name: str) -> Any:
    status, result = call(node, "GET", f"/v1/config/{kind}/{name}")
    return result if status == 200 else None


def test_config_entries_and_intentions_replicate_both_ways(fed: Federation) -> None:
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    eventually(lambda: "dc2" in ok(dc1, "GET", "/v1/catalog/datacenters"), TIMEOUT)
    ok(dc1, "PUT", "/v1/config", {"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    got = eventually(lambda: entry(dc2, "service-defaults", "web"), TIMEOUT, what="dc1 -> dc2")
    assert got["Protocol"] == "http"
    # Written through dc2: forwarded to the primary, then replicated back.
    ok(dc2, "PUT", "/v1/config", {"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"})
    assert entry(dc1, "service-defaults", "api")["Protocol"] == "grpc"
    eventually(lambda: entry(dc2, "service-defaults", "api"), TIMEOUT, what="dc2 -> dc1 -> dc2")
    # Intentions are service-intentions entries: one made via dc2 is dc1's and comes back.
    ok(dc2, "PUT", "/v1/connect/intentions/exact?source=web&destination=api", {"Action": "allow"})
    assert ok(dc1, "GET", "/v1/connect/intentions/exact?source=web&destination=api")
    eventually(
        lambda: (
            call(dc2, "GET", "/v1/connect/intentions/exact?source=web&destination=api")[0] == 200
        ),
        TIMEOUT,
        what="intention back in dc2",
    )
    # A change and a delete through dc2 read the entry where the write goes (the primary):
    # reading dc2's replicated copy would fail every compare-and-set in dc1.
    ok(dc2, "PUT", "/v1/connect/intentions/exact?source=web&destination=api", {"Action": "deny"})
    assert ok(dc1, "GET", "/v1/connect/intentions/exact?source=web&destination=api")["Action"] == (
        "deny"
    )
    ok(dc2, "DELETE", "/v1/connect/intentions/exact?source=web&destination=api")
    assert call(dc1, "GET", "/v1/connect/intentions/exact?source=web&destination=api")[0] == 404
    created = ok(
        dc2,
        "POST",
        "/v1/connect/intentions",
        {"SourceName": "db", "DestinationName": "api", "Action": "allow"},
    )
    eventually(
        lambda: call(dc2, "GET", f"/v1/connect/intentions/{created['ID']}")[0] == 200,
        TIMEOUT,
        what="intention by ID back in dc2",
    )
    ok(dc2, "DELETE", f"/v1/connect/intentions/{created['ID']}")
    assert call(dc1, "GET", f"/v1/connect/intentions/{created['ID']}")[0] == 404
    ok(dc1, "DELETE", "/v1/config/service-defaults/web")
    eventually(lambda: entry(dc2, "service-defaults", "web") is None, TIMEOUT, what="delete")


def roots(node: Node) -> Any:
    return ok(node, "GET", "/v1/connect/ca/roots")


def test_secondary_ca_chains_to_the_primary_root(fed: Federation) -> None:
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    primary = eventually(lambda: roots(dc1)["ActiveRootID"] and roots(dc1), TIMEOUT)
    secondary = eventually(lambda: roots(dc2)["ActiveRootID"] and roots(dc2), TIMEOUT)
    assert secondary["ActiveRootID"] == primary["ActiveRootID"]
    assert secondary["TrustDomain"] == primary["TrustDomain"]
    assert [r["RootCert"] for r in secondary["Roots"]] == [r["RootCert"] for r in primary["Roots"]]
    leaf = ok(dc2, "GET", "/v1/agent/connect/ca/leaf/api")
    certs = x509.load_pem_x509_certificates(leaf["CertPEM"].encode())
    assert len(certs) >= 2, "the leaf comes with dc2's intermediate"
    root = x509.load_pem_x509_certificate(primary["Roots"][-1]["RootCert"].encode())
    certs[1].verify_directly_issued_by(root)
    certs[0].verify_directly_issued_by(certs[1])
    uri = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uri.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://{primary['TrustDomain']}/ns/default/dc/dc2/svc/api"
    ]


def absent(node: Node, accessor: str) -> bool:
    """Consul answers a read of an unknown token 403 "ACL not found"."""
    status, text = call(node, "GET", f"/v1/acl/token/{accessor}")
    return status == 403 and "ACL not found" in text


def test_acl_policies_and_global_tokens_replicate(fed: Federation) -> None:
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    # The management token works in dc2 once replicated.
    eventually(
        lambda: call(dc2, "PUT", "/v1/kv/shared", "x")[0] == 200, TIMEOUT, what="MGMT in dc2"
    )
    policy = ok(
        dc1,
        "PUT",
        "/v1/acl/policy",
        {"Name": "kv-read", "Rules": 'key_prefix "" { policy = "read" }'},
    )
    token = ok(dc1, "PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]})
    secret = token["SecretID"]
    eventually(
        lambda: call(dc2, "GET", "/v1/kv/shared", token=secret)[0] == 200,
        TIMEOUT,
        what="the dc1 token reads KV in dc2",
    )
    assert call(dc2, "PUT", "/v1/kv/shared", "y", token=secret)[0] == 403
    # A local token made in dc2 stays there; one made in dc1 stays in dc1.
    local2 = ok(dc2, "PUT", "/v1/acl/token", {"Local": True, "Policies": [{"ID": policy["ID"]}]})
    local1 = ok(dc1, "PUT", "/v1/acl/token", {"Local": True, "Policies": [{"ID": policy["ID"]}]})
    assert ok(dc2, "GET", f"/v1/acl/token/{local2['AccessorID']}")["Local"] is True
    assert absent(dc1, local2["AccessorID"])
    # A global token created through dc2 is the primary's (forwarded) and comes back.
    glob2 = ok(dc2, "PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]})
    assert ok(dc1, "GET", f"/v1/acl/token/{glob2['AccessorID']}")["Local"] is False
    eventually(
        lambda: call(dc2, "GET", f"/v1/acl/token/{glob2['AccessorID']}")[0] == 200,
        TIMEOUT,
        what="the global token back in dc2",
    )
    assert absent(dc2, local1["AccessorID"])
    assert call(dc2, "GET", "/v1/kv/shared", token=local1["SecretID"])[0] == 403


def status(node: Node) -> Any:
    return ok(node, "GET", "/v1/acl/replication")


def test_replication_status_and_primary_outage(fed: Federation) -> None:
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    assert status(dc1)["Enabled"] is False  # the primary replicates from nobody
    # Only the primary bootstraps ACLs (Consul: "ACL support disabled" elsewhere).
    assert call(dc2, "PUT", "/v1/acl/bootstrap", token="")[0] == 401
    first = eventually(
        lambda: (s := status(dc2))["Running"] and s["ReplicatedIndex"] > 0 and s, TIMEOUT
    )
    assert first["Enabled"] is True
    assert first["SourceDatacenter"] == "dc1"
    assert first["ReplicationType"] == "tokens"
    assert first["ReplicatedIndex"] > 0
    later = {"Name": "later", "Rules": 'node_prefix "" { policy = "read" }'}
    ok(dc1, "PUT", "/v1/acl/policy", later)
    eventually(
        lambda: status(dc2)["ReplicatedIndex"] > first["ReplicatedIndex"],
        TIMEOUT,
        what="ReplicatedIndex moves",
    )
    ok(dc1, "PUT", "/v1/config", {"Kind": "service-defaults", "Name": "db", "Protocol": "tcp"})
    eventually(lambda: entry(dc2, "service-defaults", "db"), TIMEOUT, what="db entry in dc2")
    fed.dc1.stop(dc1)
    report = eventually(
        lambda: (s := status(dc2))["LastErrorMessage"] and s, TIMEOUT, what="LastError reported"
    )
    assert report["LastError"] != "0001-01-01T00:00:00Z"
    # dc2 still serves what it replicated: entries, policies, tokens.
    assert entry(dc2, "service-defaults", "db")["Protocol"] == "tcp"
    assert ok(dc2, "GET", "/v1/acl/policy/name/later")["Name"] == "later"
    assert roots(dc2)["ActiveRootID"]
