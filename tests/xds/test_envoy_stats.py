"""envoy_prometheus_bind_addr and envoy_stats_bind_addr: a real Envoy bootstrapped with them
serves its Prometheus stats and its /stats page on those addresses, and nothing else of its
admin API."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consulpy.agent.proxylookup import MemoryLookup
from consulpy.metrics import METRICS
from consulpy.metrics.prometheus import render
from consulpy.xds.bootstrap import PROMETHEUS_LISTENER, bootstrap_config, stats_bind
from consulpy.xds.server import XDSServer
from tests.helpers import eventually_value
from tests.xds.mesh import DC, Certs, Envoy, free_port, sidecar_snapshot


def test_bind_addresses_are_read_from_the_proxy_config() -> None:
    config = {"envoy_prometheus_bind_addr": "0.0.0.0:9102", "envoy_stats_bind_addr": ""}
    assert stats_bind(config, "envoy_prometheus_bind_addr") == ("0.0.0.0", 9102)
    assert stats_bind(config, "envoy_stats_bind_addr") is None
    with pytest.raises(ValueError, match="envoy_prometheus_bind_addr"):
        stats_bind({"envoy_prometheus_bind_addr": "9102"}, "envoy_prometheus_bind_addr")
    boot = bootstrap_config("web-sidecar-proxy", "web", prometheus_bind=("0.0.0.0", 9102))
    [listener] = boot["static_resources"]["listeners"]
    assert listener["name"] == f"{PROMETHEUS_LISTENER}:0.0.0.0:9102"
    assert [c["name"] for c in boot["static_resources"]["clusters"]] == [
        "local_agent",
        "self_admin",
    ]
    assert "listeners" not in bootstrap_config("p", "s")["static_resources"]


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def test_envoy_serves_prometheus_and_stats_listeners(tmp_path: Path) -> None:
    # Envoy opens its listeners once its first configuration arrived: serve it one.
    lookup = MemoryLookup()
    server = XDSServer(lookup)
    grpc_port = await server.start("127.0.0.1", 0)
    lookup.publish(
        sidecar_snapshot(Certs(), "web", public_port=free_port(), local_port=free_port())
    )
    admin, prom, stats = free_port(), free_port(), free_port()
    boot = bootstrap_config(
        "web-sidecar-proxy",
        "web",
        "127.0.0.1",
        grpc_port,
        admin_bind=f"127.0.0.1:{admin}",
        datacenter=DC,
        prometheus_bind=("127.0.0.1", prom),
        stats_bind=("127.0.0.1", stats),
    )
    envoy = Envoy(tmp_path, "web", boot)
    await envoy.start()
    try:

        async def scrape() -> str | None:
            try:
                status, text = await _get(f"http://127.0.0.1:{prom}/metrics")
            except aiohttp.ClientError:
                return None
            return text if status == 200 else None

        text = await eventually_value(scrape, timeout=20, what="envoy prometheus listener")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert "envoy_server_live" in families
        # what the dev cluster's Grafana dashboard queries: the public listener's requests,
        # labelled with Consul's stats tags
        public = [
            s
            for s in families["envoy_http_downstream_rq"].samples
            if s.labels.get("envoy_http_conn_manager_prefix") == "public_listener"
        ]
        assert public and public[0].labels["consul_source_service"] == "web"
        # and the ADS server counted what it pushed to this Envoy
        ours = render(METRICS, 3600).decode()
        for kind in ("CDS", "LDS"):
            assert re.search(rf'^consul_xds_server_pushes{{type="{kind}"}} [1-9]', ours, re.M)
        # the sidecar's stats carry Consul's tags (stats_config in the bootstrap)
        status, page = await _get(f"http://127.0.0.1:{stats}/stats")
        assert status == 200 and "server.live" in page
        # only those paths: the rest of the admin API is not reachable through them
        assert (await _get(f"http://127.0.0.1:{prom}/config_dump"))[0] == 404
        assert (await _get(f"http://127.0.0.1:{stats}/quitquitquit"))[0] == 404
    finally:
        await envoy.stop()
        await server.stop()
