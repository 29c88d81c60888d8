"""limits.rpc_rate / rpc_max_burst on a server: RPCs beyond the bucket are refused, and a client
agent's HTTP caller sees 429 "rate limit exceeded"; the token bucket itself on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consulpy.rpc.ratelimit import TokenBucket
from tests.cluster.harness import Cluster, eventually


def test_token_bucket_refills_at_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 3, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert bucket.allow() and not bucket.allow()
    now[0] += 100  # never more than the burst
    assert sum(bucket.allow() for _ in range(10)) == 3
    unlimited = TokenBucket(-1, 0, clock=lambda: now[0])
    assert all(unlimited.allow() for _ in range(1000))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("rpcrate")), servers=1, clients=1)
    c.servers[0].extra.append("-hcl=limits { rpc_rate = 0.01  rpc_max_burst = 30 }")
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


@pytest.mark.slow
def test_client_agent_gets_429_beyond_the_server_rpc_rate(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.clients[0]
    cluster.wait_leader()
    seen: list[tuple[int, bytes]] = []

    def limited() -> bool:
        status, _, body = client.request("GET", "/v1/catalog/services")
        seen.append((status, body))
        return status == 429

    eventually(limited, timeout=60, what="a 429 from the client agent")
    assert seen[-1][1].strip() == b"rate limit exceeded"
    assert all(s in (200, 429, 500) for s, _ in seen)
    # the server's own HTTP API does not go through RPC and is not limited
    status, _, _ = server.request("GET", "/v1/catalog/services")
    assert status == 200
