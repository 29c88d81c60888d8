"""/v1/agent/metrics as users and Prometheus see it: the JSON summary, the Prometheus
exposition (parsed by prometheus_client's own parser), counters moving with the operations
that feed them, the stream, and the statsd / DogStatsD sinks sending to a socket the test
binds."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from consulpy.metrics import METRICS
from consulpy.testing import DevAgent
from tests.conftest import HTTP
from tests.helpers import eventually_value


async def scrape(http: HTTP) -> dict[str, Any]:
    """name -> family, from a Prometheus scrape."""
    status, headers, body = await http.get("/v1/agent/metrics?format=prometheus")
    assert status == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    # the parser names a counter's sample <name>_total whether or not the text does
    names = (sample_name, sample_name + "_total")
    for family in families.values():
        for s in family.samples:
            if s.name in names and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_prometheus_scrape_parses_and_counts_kv_writes(http: HTTP) -> None:
    before = await scrape(http)
    for i in range(5):
        status, _, _ = await http.put(f"/v1/kv/metrics/{i}", b"v")
        assert status == 200
    after = await scrape(http)
    assert after["consul_raft_apply"].type == "counter"
    assert value(after, "consul_raft_apply") >= value(before, "consul_raft_apply") + 5
    assert after["consul_kvs_apply"].type == "summary"
    assert value(after, "consul_kvs_apply_count") == value(before, "consul_kvs_apply_count") + 5
    assert value(after, "consul_fsm_kvs_count", op="set") >= 5
    http_count = value(after, "consul_api_http_count", method="PUT", path="v1_kv_")
    assert http_count == value(before, "consul_api_http_count", method="PUT", path="v1_kv_") + 5
    quantiles = {
        s.labels["quantile"]
        for s in after["consul_api_http"].samples
        if s.labels.get("path") == "v1_kv_" and "quantile" in s.labels
    }
    assert quantiles == {"0.5", "0.9", "0.99"}
    # the Python process collectors stand in for Go's
    assert "process_resident_memory_bytes" in after
    assert "python_info" in after


async def test_runtime_and_server_gauges_appear(http: HTTP) -> None:
    wanted = (
        "consul_runtime_alloc_bytes",
        "consul_runtime_num_goroutines",
        "consul_runtime_open_fds",
        "consul_server_isLeader",
        "consul_raft_applied_index",
        "consul_state_nodes",
        "consul_memberlist_health_score",
    )

    async def gauges() -> dict[str, Any] | None:
        families = await scrape(http)
        if not all(w in families for w in wanted):
            return None
        # the registry is process-wide: wait for this agent's own once-a-second refresh
        return families if value(families, "consul_server_isLeader") == 1.0 else None

    families = await eventually_value(gauges, timeout=10, what="server gauges")
    assert value(families, "consul_runtime_alloc_bytes") > 0
    assert value(families, "consul_state_nodes") >= 1


async def test_json_summary_shape(http: HTTP) -> None:
    await http.put("/v1/kv/shape", b"v")
    status, headers, body = await http.get("/v1/agent/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    for sample in doc["Samples"]:
        assert set(sample) == {
            "Name",
            "Count",
            "Rate",
            "Sum",
            "Min",
            "Max",
            "Mean",
            "Stddev",
            "Labels",
        }
        assert isinstance(sample["Labels"], dict)
    names = [(s["Name"], sorted(s["Labels"].items())) for s in doc["Samples"]]
    assert names == sorted(names)


async def test_prometheus_off_when_retention_is_zero() -> None:
    config = {"telemetry": {"prometheus_retention_time": "0s"}}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        async with session.get(f"{dev.url}/v1/agent/metrics?format=prometheus") as resp:
            assert resp.status == 200
            assert await resp.read() == b""
            assert resp.headers["X-Consul-Reason"] == (
                "Prometheus is not enabled since its retention time is not positive"
            )
        # Accept negotiation asks for the same thing
        headers = {"Accept": "application/openmetrics-text"}
        async with session.get(f"{dev.url}/v1/agent/metrics", headers=headers) as resp:
            assert resp.status == 200 and "X-Consul-Reason" in resp.headers
        async with session.get(f"{dev.url}/v1/agent/metrics") as resp:
            assert resp.status == 200 and "Gauges" in await resp.json()


async def test_stream_sends_one_summary_per_finished_interval(agent: DevAgent) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{agent.url}/v1/agent/metrics/stream") as resp,
    ):
        assert resp.status == 200
        METRICS.incr("test.stream.marker")
        METRICS.rotate()  # what the 10 s timer does
        decoder = json.JSONDecoder()
        text = ""
        while True:
            text += (await asyncio.wait_for(resp.content.readany(), 10)).decode()
            try:
                doc, _ = decoder.raw_decode(text.lstrip())
                break
            except ValueError:
                continue
    assert '\n    "Timestamp"' in text  # pretty, 4-space indented
    assert "consul.test.stream.marker" in [c["Name"] for c in doc["Counters"]]


def _udp_listener() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


async def _received_lines(sock: socket.socket, *wants: str, timeout: float = 10) -> list[str]:
    """Lines received until each of `wants` has been seen in one of them."""
    loop = asyncio.get_running_loop()
    lines: list[str] = []
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), deadline - loop.time())
        except TimeoutError:
            break
        lines.extend(data.decode().splitlines())
        if all(any(want in line for line in lines) for want in wants):
            return lines
    raise AssertionError(f"{wants!r} never all arrived; got {lines[:40]}")


async def test_statsd_sink_sends_to_the_configured_address() -> None:
    sock, port = _udp_listener()
    config = {
        "telemetry": {
            "statsd_address": f"127.0.0.1:{port}",
            "metrics_prefix": "consulpy",
            "disable_hostname": True,
        }
    }
    try:
        async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
            async with session.put(f"{dev.url}/v1/kv/statsd", data=b"v") as resp:
                assert resp.status == 200
            # labels folded into the key, as go-metrics' statsd sink does
            lines = await _received_lines(
                sock, "consulpy.kvs.apply:", "consulpy.api.http.PUT.v1_kv_:"
            )
            assert any(
                line.startswith("consulpy.kvs.apply:") and line.endswith("|ms") for line in lines
            )
            assert any(line.startswith("consulpy.raft.apply:1|c") for line in lines)
    finally:
        sock.close()


async def test_dogstatsd_sink_sends_labels_and_global_tags_as_tags() -> None:
    sock, port = _udp_listener()
    config = {
        "telemetry": {
            "dogstatsd_addr": f"127.0.0.1:{port}",
            "dogstatsd_tags": ["env:test"],
            "disable_hostname": False,
        },
    }
    try:
        async with (
            DevAgent(node_name="dd-node", config=config) as dev,
            aiohttp.ClientSession() as session,
        ):
            async with session.put(f"{dev.url}/v1/kv/dd", data=b"v") as resp:
                assert resp.status == 200
            # with a sink and disable_hostname = false, gauges carry the host name, which
            # DogStatsD gets as a tag
            lines = await _received_lines(
                sock, "|ms|#method:PUT,path:v1_kv_,env:test", "|g|#host:dd-node,env:test"
            )
            assert any(
                line.startswith("consul.runtime.alloc_bytes:")
                and line.endswith("|g|#host:dd-node,env:test")
                for line in lines
            )
            assert any(
                line.startswith("consul.api.http:") and line.endswith("path:v1_kv_,env:test")
                for line in lines
            )
    finally:
        sock.close()


async def test_prefix_filter_drops_blocked_metrics() -> None:
    config = {"telemetry": {"prefix_filter": ["-consul.api.http"]}}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        async with session.put(f"{dev.url}/v1/kv/f", data=b"v") as resp:
            assert resp.status == 200
        async with session.get(f"{dev.url}/v1/agent/metrics?format=prometheus") as resp:
            text = await resp.text()
    assert "consul_api_http" not in text
    assert "consul_kvs_apply_count" in text


async def test_bad_telemetry_settings_are_refused_at_load() -> None:
    import pytest

    from consulpy.config import ConfigError

    with pytest.raises(ConfigError, match="must begin with either"):
        DevAgent(config={"telemetry": {"prefix_filter": ["consul.raft"]}})
    with pytest.raises(ConfigError, match="statsd_address: expected host:port"):
        DevAgent(config={"telemetry": {"statsd_address": "localhost"}})


async def test_blocking_queries_in_flight_are_counted(http: HTTP) -> None:
    assert (await http.put("/v1/kv/block", b"v"))[0] == 200
    index = int((await http.get("/v1/kv/block"))[1]["X-Consul-Index"])
    base = value(await scrape(http), "consul_rpc_queries_blocking")
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/block?index={index}&wait=30s"))

    async def in_flight(n: float) -> bool:
        return value(await scrape(http), "consul_rpc_queries_blocking") == n

    await eventually_value(lambda: in_flight(base + 1), what="our blocking query in flight")
    assert (await http.put("/v1/kv/block", b"w"))[0] == 200  # wakes it
    assert (await blocked)[0] == 200
    await eventually_value(lambda: in_flight(base), what="our blocking query done")


async def test_dns_queries_are_timed() -> None:
    from tests.dns.support import dns_agent

    async with dns_agent(catalog=False) as client, aiohttp.ClientSession() as session:
        http = HTTP(session, client.dev.url)
        before = await scrape(http)
        await client.ask("consul.service.consul")
        await client.ask("1.0.0.127.in-addr.arpa", "PTR")
        after = await scrape(http)
        # a reverse lookup is a ptr_query, not a domain_query (Consul's two handlers); both
        # carry the answering agent's node name
        node = client.dev.config.node_name
        count = "consul_dns_domain_query_count"
        assert value(after, count, node=node) == value(before, count, node=node) + 1
        ptr = "consul_dns_ptr_query_count"
        assert value(after, ptr, node=node) == value(before, ptr, node=node) + 1
        assert after["consul_dns_ptr_query"].type == "summary"
