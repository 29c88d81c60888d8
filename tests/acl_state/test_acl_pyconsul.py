"""py-consul 1.8.0's ACL API (consul.Consul().acl) against a dev agent with ACLs enabled
and an initial management token, as its own `acl_consul` fixture runs Consul."""

from __future__ import annotations

from collections.abc import Iterator

import consul
import pytest

from consulpy.testing import DevAgent
from tests.acl_state.conftest import MGMT, acl_config
from tests.cluster.harness import eventually


@pytest.fixture(scope="module")
def dev() -> Iterator[DevAgent]:
    with DevAgent(config=acl_config()).in_thread() as agent:
        yield agent


@pytest.fixture
def c(dev: DevAgent) -> consul.Consul:
    client = consul.Consul(host=dev.host, port=dev.port, token=MGMT)

    def ready() -> bool:
        try:
            return client.acl.token.read_self()["SecretID"] == MGMT
        except consul.ConsulException:
            return False

    eventually(ready, what="management token")
    return client


def test_token_crud(c: consul.Consul) -> None:
    me = c.acl.token.read_self()
    assert me["Policies"][0]["Name"] == "global-management"
    created = c.acl.token.create(description="py", service_identities=[{"ServiceName": "web"}])
    accessor = created["AccessorID"]
    assert c.acl.token.read(accessor)["Description"] == "py"
    assert accessor in [t["AccessorID"] for t in c.acl.token.list()]
    assert [t["AccessorID"] for t in c.acl.token.list(servicename="web")] == [accessor]
    updated = c.acl.token.update(accessor, description="py2")
    assert updated["Description"] == "py2" and updated["SecretID"] == created["SecretID"]
    clone = c.acl.token.clone(accessor, description="copy")
    assert clone["Description"] == "copy"
    assert c.acl.token.delete(accessor) is True
    assert c.acl.token.delete(clone["AccessorID"]) is True
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        c.acl.token.read(accessor)  # a deleted token: 403, as py-consul's own suite expects
    with pytest.raises(consul.ACLPermissionDenied):
        c.acl.bootstrap()
    anon = consul.Consul(host=c.http.host, port=c.http.port, token="not-a-token")
    with pytest.raises((consul.ACLPermissionDenied, consul.ConsulException)):
        anon.acl.token.read_self()


def test_policy_crud(c: consul.Consul) -> None:
    policy = c.acl.policy.create(
        "py-policy", description="d", rules={"key": {"a": {"policy": "read"}}}
    )
    assert policy["Name"] == "py-policy" and policy["Description"] == "d"
    assert c.acl.policy.read(policy["ID"])["Name"] == "py-policy"
    assert "py-policy" in [p["Name"] for p in c.acl.policy.list()]
    updated = c.acl.policy.update(policy["ID"], "py-policy-2")
    assert updated["Name"] == "py-policy-2"
    token = c.acl.token.create(policies_name=["py-policy-2"])
    assert token["Policies"] == [{"ID": policy["ID"], "Name": "py-policy-2"}]
    assert c.acl.token.delete(token["AccessorID"]) is True
    assert c.acl.policy.delete(policy["ID"]) is True
    assert "py-policy-2" not in [p["Name"] for p in c.acl.policy.list()]


def test_role_crud(c: consul.Consul) -> None:
    policy = c.acl.policy.create("role-policy")
    role = c.acl.role.create("py-role", description="r", policies_id=[policy["ID"]])
    assert role["Policies"] == [{"ID": policy["ID"], "Name": "role-policy"}]
    assert c.acl.role.read(role["ID"])["Name"] == "py-role"
    assert c.acl.role.read_by_name("py-role")["ID"] == role["ID"]
    assert [r["ID"] for r in c.acl.role.list(policy=policy["ID"])] == [role["ID"]]
    updated = c.acl.role.update(role["ID"], "py-role-2", description="r2")
    assert updated["Name"] == "py-role-2"
    token = c.acl.token.create(roles_name=["py-role-2"])
    assert token["Roles"][0]["ID"] == role["ID"]
    assert c.acl.token.delete(token["AccessorID"]) is True
    assert c.acl.role.delete(role["ID"]) is True
    assert c.acl.policy.delete(policy["ID"]) is True
