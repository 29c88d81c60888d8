"""A 3-server cluster with ACLs on and default deny: tokens replicate and survive failover."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.acl_state.conftest import MGMT
from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

ACL_HCL = (
    '-hcl=acl { enabled = true default_policy = "deny" '
    f'tokens {{ initial_management = "{MGMT}" }} }}'
)


def call(node: Node, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://{node.http_addr}{path}", data=data, method=method, headers={"X-Consul-Token": MGMT}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_tokens_replicate_and_survive_failover(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    for node in cluster.nodes:
        node.extra.append(ACL_HCL)
    try:
        cluster.start_all()
        leader = cluster.wait_leader()
        follower = next(n for n in cluster.servers if n is not leader)
        # Built-ins and the initial management token exist once the leader wrote them.
        eventually(lambda: call(follower, "GET", "/v1/acl/token/self")[0] == 200, what="mgmt")
        status, raw = call(follower, "PUT", "/v1/acl/policy", {"Name": "p"})
        assert status == 200, raw
        status, raw = call(
            follower, "PUT", "/v1/acl/token", {"Description": "t", "Policies": [{"Name": "p"}]}
        )
        assert status == 200, raw
        token = json.loads(raw)
        for node in cluster.servers:
            eventually(
                lambda node=node: (
                    call(node, "GET", f"/v1/acl/token/{token['AccessorID']}?stale")[0] == 200
                ),
                what=f"token on {node.name}",
            )
        status, raw = call(leader, "PUT", "/v1/acl/bootstrap")
        assert status == 403 and b"ACL bootstrap no longer allowed" in raw
        cluster.kill(leader)
        new_leader = cluster.wait_leader(exclude=leader)
        status, raw = call(new_leader, "GET", f"/v1/acl/token/{token['AccessorID']}")
        assert status == 200 and json.loads(raw)["Policies"][0]["Name"] == "p"
        # The new leader does not re-create what exists: one anonymous token, one mgmt token.
        status, raw = call(new_leader, "GET", "/v1/acl/tokens")
        secrets = [t["SecretID"] for t in json.loads(raw)]
        assert secrets.count(MGMT) == 1 and secrets.count("anonymous") == 1
        status, raw = call(new_leader, "PUT", "/v1/acl/token", {"Description": "after"})
        assert status == 200, raw
    finally:
        cluster.stop_all()
