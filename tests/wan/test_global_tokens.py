"""Global tokens used in a secondary datacenter that does not hold them: dc2 runs ACLs without
token replication (`acl.enable_token_replication = false`), so no token of dc1 is ever
copied there. dc2's servers resolve a secret they do not know in the primary, as Consul's
secondaries do: a global token works in dc2 as soon as dc1 answered its creation, through
the servers' endpoints and the agent's own (/v1/agent/...); a local token of dc1 does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acl_state.test_acl_jwt import PUB
from tests.acl_state.test_acl_jwt import token as bearer
from tests.cluster.harness import eventually
from tests.wan.harness import Federation, federation
from tests.wan.test_replication import MGMT, PRIMARY, TIMEOUT, call, ok

ACL = f'-hcl=acl {{ enabled = true default_policy = "deny" tokens {{ agent = "{MGMT}" }} }}'
ACL_PRIMARY = f'-hcl=acl {{ tokens {{ initial_management = "{MGMT}" }} }}'
# dc2 replicates policies (with a replication token) but not tokens
ACL_SECONDARY = f'-hcl=acl {{ tokens {{ replication = "{MGMT}" }} }}'


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    f = federation(Path(tmp_path_factory.mktemp("global-tokens")), servers=1, clients=0)
    f.dc1.servers[0].extra += [ACL, ACL_PRIMARY, PRIMARY]
    f.dc2.servers[0].extra += [ACL, ACL_SECONDARY, PRIMARY]
    with f.running():
        yield f


def test_global_tokens_resolve_in_the_primary(fed: Federation) -> None:
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    # dc1's management token is never replicated to dc2, yet works there once dc2 can
    # reach dc1 over the WAN (federation and the leader are up; the WAN route may lag)
    eventually(
        lambda: call(dc2, "PUT", "/v1/kv/shared", "x")[0] == 200, TIMEOUT, what="MGMT in dc2"
    )
    assert ok(dc2, "GET", "/v1/acl/replication")["ReplicationType"] == "policies"
    policy = ok(
        dc1,
        "PUT",
        "/v1/acl/policy",
        {
            "Name": "kv-and-agent-read",
            "Rules": 'key_prefix "" { policy = "read" } agent_prefix "" { policy = "read" }',
        },
    )
    token = ok(dc1, "PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]})
    secret = token["SecretID"]
    # At once (no waiting for any replication): the servers' endpoints and the agent's own.
    status, body = call(dc2, "GET", "/v1/kv/shared", token=secret)
    assert status == 200, body
    status, body = call(dc2, "GET", "/v1/agent/self", token=secret)
    assert status == 200, body
    # ... with the token's rules: no write
    status, body = call(dc2, "PUT", "/v1/kv/shared", "y", token=secret)
    assert status == 403 and "Permission denied" in body, body
    # The token itself stays in dc1 (no token replication): dc2's store does not have it.
    status, body = call(dc2, "GET", f"/v1/acl/token/{token['AccessorID']}")
    assert status == 403 and "ACL not found" in body, body
    # A local token of dc1 is valid in dc1 only; an unknown secret is unknown in both.
    local1 = ok(dc1, "PUT", "/v1/acl/token", {"Local": True, "Policies": [{"ID": policy["ID"]}]})
    ok(dc1, "PUT", "/v1/kv/shared", "x")  # (KV is per datacenter)
    assert call(dc1, "GET", "/v1/kv/shared", token=local1["SecretID"])[0] == 200
    for secret in (local1["SecretID"], "6d6e3c1c-0000-4000-8000-000000000000"):
        for path in ("/v1/kv/shared", "/v1/agent/self"):
            status, body = call(dc2, "GET", path, token=secret)
            assert status == 403 and "ACL not found" in body, (path, status, body)
    # A deleted global token stops working in dc2 once dc2's cache of it expires or its
    # ACL tables change (here: the policy replication brings a new policy).
    ok(dc1, "DELETE", f"/v1/acl/token/{token['AccessorID']}")
    ok(dc1, "PUT", "/v1/acl/policy", {"Name": "bump", "Rules": ""})
    eventually(
        lambda: call(dc2, "GET", "/v1/kv/shared", token=token["SecretID"])[0] == 403,
        TIMEOUT,
        what="the deleted token refused in dc2",
    )


def test_global_logins_happen_in_the_primary(fed: Federation) -> None:
    """An auth method with TokenLocality = "global" makes global tokens in the primary (usable
    in dc2 at once); in a secondary, as in Consul, such a login is refused."""
    dc1, dc2 = fed.dc1.servers[0], fed.dc2.servers[0]
    method = {
        "Name": "nomad",
        "Type": "jwt",
        "TokenLocality": "global",
        "Config": {
            "JWTValidationPubKeys": [PUB],
            "BoundIssuer": "https://issuer.test",
            "BoundAudiences": ["consul"],
            "ClaimMappings": {"service": "service"},
        },
    }
    rule = {"AuthMethod": "nomad", "BindType": "service", "BindName": "${value.service}"}
    for node in (dc1, dc2):  # auth methods and binding rules are per datacenter
        ok(node, "PUT", "/v1/acl/auth-method", method)
        ok(node, "PUT", "/v1/acl/binding-rule", rule)
    login = {"AuthMethod": "nomad", "BearerToken": bearer()}
    made = ok(dc1, "POST", "/v1/acl/login", login, token="")
    assert made["Local"] is False and made["ServiceIdentities"] == [{"ServiceName": "web"}]
    # web's service identity reads the catalog, in dc2 too
    status, body = call(dc2, "GET", "/v1/catalog/services", token=made["SecretID"])
    assert status == 200, body
    status, body = call(dc2, "POST", "/v1/acl/login", login, token="")
    assert status == 500 and body == (
        "creating global tokens via auth methods is only permitted in the primary datacenter"
    ), (status, body)
