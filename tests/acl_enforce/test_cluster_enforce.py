"""A 3-server cluster and a client agent with default deny: a request made on the client is
authorized on the servers and the denial comes back with Consul's text (through RPC)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.acl_enforce.conftest import ROOT
from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

ACL_HCL = (
    '-hcl=acl { enabled = true default_policy = "deny" '
    f'tokens {{ initial_management = "{ROOT}" agent = "{ROOT}" }} }}'
)


def call(
    node: Node, method: str, path: str, body: object = None, token: str | None = ROOT
) -> tuple[int, dict[str, str], bytes]:
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"X-Consul-Token": token} if token is not None else {}
    req = urllib.request.Request(
        f"http://{node.http_addr}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_client_agent_requests_are_authorized_on_the_servers(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3, clients=1)
    for node in cluster.nodes:
        node.extra.append(ACL_HCL)
    try:
        cluster.start_all()
        client = cluster.clients[0]
        eventually(lambda: call(client, "GET", "/v1/acl/token/self")[0] == 200, what="root")
        status, _, raw = call(
            client,
            "PUT",
            "/v1/acl/policy",
            {"Name": "app", "Rules": 'key_prefix "app/" { policy = "write" }'},
        )
        assert status == 200, raw
        status, _, raw = call(client, "PUT", "/v1/acl/token", {"Policies": [{"Name": "app"}]})
        assert status == 200, raw
        token = json.loads(raw)
        secret = token["SecretID"]

        assert call(client, "PUT", "/v1/kv/app/a", "1", token=secret)[0] == 200
        assert call(client, "PUT", "/v1/kv/other", "1")[0] == 200
        status, _, body = call(client, "PUT", "/v1/kv/other", "2", token=secret)
        assert status == 403
        assert body.decode() == (
            f"Permission denied: token with AccessorID '{token['AccessorID']}' lacks "
            "permission 'key:write' on \"other\""
        )
        status, _, body = call(client, "GET", "/v1/kv/app/a", token="not-a-token")
        assert (status, body) == (403, b"ACL not found")
        status, _, body = call(client, "GET", "/v1/kv/?recurse", token=secret)
        assert status == 200 and [e["Key"] for e in json.loads(body)] == ["app/a"]
        status, headers, _ = call(client, "GET", "/v1/kv/?recurse", token=secret)
        assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
        # The same from a follower server (forwarded to the leader) and stale (served locally).
        leader = cluster.wait_leader()
        follower = next(n for n in cluster.servers if n is not leader)
        status, _, body = call(follower, "PUT", "/v1/kv/other", "3", token=secret)
        assert status == 403 and b"'key:write' on \"other\"" in body
        status, _, body = call(follower, "GET", "/v1/kv/other?stale", token=secret)
        assert status == 403, body
        # A policy change on the leader is seen by every server on the next request.
        status, _, raw = call(client, "GET", "/v1/acl/policy/name/app")
        policy = json.loads(raw)
        status, _, raw = call(
            client,
            "PUT",
            f"/v1/acl/policy/{policy['ID']}",
            {"Name": "app", "Rules": 'key_prefix "" { policy = "write" }'},
        )
        assert status == 200, raw
        eventually(
            lambda: call(follower, "GET", "/v1/kv/other?stale", token=secret)[0] == 200,
            what="the policy change on a follower",
        )
    finally:
        cluster.stop_all()
