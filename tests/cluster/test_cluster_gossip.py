"""Gossip across real agent processes: encryption keyring, user events, leave, force-leave."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest

from tests.cli.agentproc import consulpy
from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


def test_encrypted_cluster_keyring_events_and_leave(tmp_path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    cluster = Cluster(tmp_path, servers=1, clients=2)
    for node in cluster.nodes:
        node.extra = [f"-encrypt={key}"]
    try:
        cluster.start_all()
        server, c0, c1 = cluster.nodes
        a = f"-http-addr={server.http_addr}"
        out = consulpy("keyring", a, "-list")
        assert f"{key} [3/3]" in out.stdout, out.stdout + out.stderr
        new_key = consulpy("keygen").stdout.strip()
        assert len(base64.b64decode(new_key)) == 32
        assert consulpy("keyring", a, f"-install={new_key}").returncode == 0
        assert consulpy("keyring", a, f"-use={new_key}").returncode == 0
        out = consulpy("keyring", a, "-list-primary")
        assert f"{new_key} [3/3]" in out.stdout
        out = consulpy("keyring", a, f"-remove={new_key}")
        assert out.returncode == 1  # the primary cannot be removed
        assert consulpy("keyring", a, f"-remove={key}").returncode == 0
        pools = server.json("GET", "/v1/operator/keyring")
        assert list(pools[0]["Keys"]) == [new_key]
        # a user event fired on one agent reaches the others
        out = consulpy("event", f"-http-addr={c0.http_addr}", "-name=deploy", "v2")
        assert out.stdout.startswith("Event ID: ")
        eventually(
            lambda: [e["Name"] for e in c1.json("GET", "/v1/event/list")] == ["deploy"],
            what="the event reaching c1",
        )
        # members -detailed
        out = consulpy("members", f"-http-addr={c1.http_addr}", "-detailed")
        assert "role=consul" in out.stdout and "role=node" in out.stdout
        # graceful leave through the CLI: others see `left` and the catalog drops it
        out = consulpy("leave", f"-http-addr={c0.http_addr}")
        assert out.stdout.strip() == "Graceful leave complete"
        eventually(
            lambda: any(
                m["Name"] == "c0" and m["Status"] == 3
                for m in server.json("GET", "/v1/agent/members")
            ),
            what="c0 left",
        )
        eventually(
            lambda: server.json("GET", "/v1/catalog/node/c0") is None, what="c0 deregistered"
        )
        assert c0.proc is not None and c0.proc.proc.wait(30) == 0  # type: ignore[union-attr]
        # kill -9 the other client, then force-leave it with prune
        cluster.kill(c1)
        eventually(
            lambda: any(
                m["Name"] == "c1" and m["Status"] == 4
                for m in server.json("GET", "/v1/agent/members")
            ),
            timeout=60,
            what="c1 failed",
        )
        assert consulpy("force-leave", a, "-prune", "c1").returncode == 0
        eventually(
            lambda: all(m["Name"] != "c1" for m in server.json("GET", "/v1/agent/members")),
            what="c1 pruned",
        )
        eventually(
            lambda: server.json("GET", "/v1/catalog/node/c1") is None, what="c1 deregistered"
        )
        json.dumps(pools)
    finally:
        cluster.stop_all()
