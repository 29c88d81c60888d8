"""default_query_time and max_query_time: a blocking query's wait is cut to the maximum, and
one without `wait` uses the default (Consul's server rule), on a real agent process."""

from __future__ import annotations

import urllib.error
import urllib.request

from consulpy.server.query import QueryOptions, QueryTimes
from tests.cli.agentproc import AgentProcess
from tests.ops.procs import DEV, start


def test_blocking_timeout_rule() -> None:
    times = QueryTimes(default=2.0, maximum=3.0)
    assert QueryOptions(index=5, wait=600.0).blocking_timeout(0.0, times) == 3.0
    assert QueryOptions(index=5).blocking_timeout(0.0, times) == 2.0
    assert QueryOptions(index=5, wait=1.0).blocking_timeout(0.0, times) == 1.0
    # Consul's defaults when nothing is configured: 5 minutes, at most 10 minutes.
    assert QueryOptions(index=5).blocking_timeout(0.0) == 300.0
    assert QueryOptions(index=5, wait=3600.0).blocking_timeout(0.0) == 600.0


def _blocking_get(agent: AgentProcess, query: str) -> int:
    """The index a blocking read on a missing key returns; the client gives up after 60 s,
    far beyond the configured times, so returning at all shows the setting applied."""
    url = f"http://{agent.http_addr}/v1/kv/never"
    try:
        urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        index = int(exc.headers["X-Consul-Index"])
    try:
        urllib.request.urlopen(f"{url}?index={index}{query}", timeout=60)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return int(exc.headers["X-Consul-Index"])
    raise AssertionError("the key exists")


def test_agent_honours_max_and_default_query_time() -> None:
    agent = start(*DEV, "-max-query-time=1s", "-default-query-time=1s")
    try:
        # wait=10m is cut to max_query_time; no wait uses default_query_time. Both end with
        # the same index (nothing changed), as a timed-out blocking query does.
        before = _blocking_get(agent, "&wait=10m")
        assert _blocking_get(agent, "") == before
    finally:
        agent.stop()
