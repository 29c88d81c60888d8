"""A client agent keeps authorizing its own endpoints when the servers are gone:
down_policy extend-cache serves the cached token, an unseen token is refused, and the
agent_recovery token works without any server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Node, eventually

pytestmark = pytest.mark.slow

MGMT = "5c0ffee0-0000-4000-8000-00000000abcd"
RECOVERY = "9e3c0000-0000-4000-8000-00000000beef"


def hcl(down_policy: str) -> str:
    return (
        f'-hcl=acl {{ enabled = true default_policy = "deny" down_policy = "{down_policy}" '
        f'tokens {{ initial_management = "{MGMT}" agent_recovery = "{RECOVERY}" }} }}'
    )


def call(node: Node, method: str, path: str, token: str, body: object = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{node.http_addr}{path}", data=data, method=method)
    req.add_header("X-Consul-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_client_agent_with_servers_down(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=1, clients=1)
    for node in cluster.nodes:
        node.extra = [hcl("extend-cache")]
    try:
        cluster.start_all()
        server, client = cluster.nodes

        def token_made() -> str:
            status, body = call(
                server,
                "PUT",
                "/v1/acl/policy",
                MGMT,
                {"Name": "self", "Rules": 'agent "c0" { policy = "read" }'},
            )
            assert status == 200, body
            policy = json.loads(body)
            status, body = call(
                server, "PUT", "/v1/acl/token", MGMT, {"Policies": [{"ID": policy["ID"]}]}
            )
            assert status == 200, body
            return str(json.loads(body)["SecretID"])

        secret = eventually(token_made, what="a token created")
        eventually(
            lambda: call(client, "GET", "/v1/agent/self", secret)[0] == 200,
            what="the client agent allowing the token",
        )
        status, text = call(client, "PUT", "/v1/agent/reload", secret)
        assert status == 403 and "'agent:write' on \"c0\"" in text
        cluster.stop(server)
        # The cached token keeps working; a token the agent never saw is refused.
        assert call(client, "GET", "/v1/agent/self", secret)[0] == 200
        assert (
            call(client, "GET", "/v1/agent/self", "0000dead-0000-4000-8000-000000000000")[0] == 403
        )
        assert call(client, "GET", "/v1/agent/self", RECOVERY)[0] == 200
    finally:
        cluster.stop_all()
