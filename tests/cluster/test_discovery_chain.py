"""The discovery chain from a client agent: the read goes to the server over RPC, blocks,
and returns what the server compiled."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, eventually

pytestmark = pytest.mark.slow


def test_client_agent_reads_and_blocks_on_the_chain(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=1, clients=1)
    try:
        cluster.start_all()
        client = cluster.clients[0]
        eventually(
            lambda: client.json("GET", "/v1/connect/ca/roots")["Roots"], what="CA initialized"
        )
        status, headers, raw = client.request("GET", "/v1/discovery-chain/api")
        assert status == 200, raw
        assert json.loads(raw)["Chain"]["StartNode"] == "resolver:api.default.default.dc1"
        index = int(headers["X-Consul-Index"])
        answer: list[tuple[int, dict[str, str], bytes]] = []
        blocked = threading.Thread(
            target=lambda: answer.append(
                client.request("GET", f"/v1/discovery-chain/api?index={index}&wait=30s")
            )
        )
        blocked.start()
        resolver = {"Kind": "service-resolver", "Name": "api", "ConnectTimeout": "4s"}
        assert client.json("PUT", "/v1/config", resolver) is True
        blocked.join(40)
        [(status, headers, raw)] = answer
        assert status == 200, raw
        assert int(headers["X-Consul-Index"]) > index
        chain = json.loads(raw)["Chain"]
        node = chain["Nodes"]["resolver:api.default.default.dc1"]["Resolver"]
        assert node["ConnectTimeout"] == "4s"
        # the server compiles the same chain
        server = cluster.servers[0].json("GET", "/v1/discovery-chain/api")
        assert server["Chain"] == chain
    finally:
        cluster.stop_all()
