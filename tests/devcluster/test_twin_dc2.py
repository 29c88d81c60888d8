"""The docker-free twin with its second datacenter (`consulpy dev-cluster up -dc2`), end to end
with real processes: dc2 added to a running dc1 (`up`, then `up -dc2`), both datacenters
federated, `?dc=dc2` reads and writes through dc1, dc2
on dc1's CA and config entries, web -> api in dc1, then dc1's api stopped (SIGKILL) and web's
calls answered by dc2's api through both mesh gateways, over mTLS, and back once `up` has
restarted dc1's api.

One cluster (module fixture) for every assertion, in file order. Everything is polled with a
deadline; nothing sleeps for synchronisation. The failover time is printed, not asserted.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from consulpy.devcluster import topology as topo
from tests.cluster.harness import eventually
from tests.devcluster.test_twin import CONFIGS, Twin, get, run

pytestmark = pytest.mark.slow

UP_TIMEOUT = "120s"
DEADLINE = 90.0  # for anything that depends on health checks (api's runs every 5 s)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    data = tmp_path_factory.mktemp("devcluster-dc2") / "dev"
    flags = (f"-data-dir={data}", f"-configs-dir={CONFIGS}", f"-timeout={UP_TIMEOUT}")
    # dc1 alone first, as a user who tries -dc2 later would have it: dc2 joins it running.
    first = run("dev-cluster", "up", *flags, timeout=180)
    handle = Twin(data, first)
    try:
        assert first.returncode == 0, handle.output()
        handle.up = run("dev-cluster", "up", "-dc2", *flags, timeout=180)
        yield handle
    finally:
        if (data / "cluster.json").exists():
            run("dev-cluster", "down", f"-data-dir={data}", "-timeout=10s")
            for tracked in handle.tracked():  # whatever `down` may have missed
                tracked.signal(signal.SIGKILL)


def dc1(twin: Twin) -> str:
    return twin.http("consul-client-1")


def dc2(twin: Twin) -> str:
    return twin.http("consul-dc2-client")


def read(url: str) -> Any:
    status, body = get(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def web_upstream(twin: Twin) -> dict[str, Any] | None:
    """What web says its upstream (api) answered, or None when the call failed."""
    status, body = get(twin.url("web") + "/")
    if status != 200:
        return None
    return json.loads(body)["upstream"]


def test_up_dc2_adds_dc2_to_the_running_dc1(twin: Twin) -> None:
    assert twin.up.returncode == 0, twin.output()
    assert "datacenters: dc1, dc2" in twin.up.stdout
    for name in topo.names():  # nothing of dc1 restarted
        assert f"{name}: already running" in twin.up.stdout, name
    out = twin.dev("status")
    assert out.returncode == 0, out.stdout + out.stderr
    for name in topo.TWO_DCS.names():
        line = next(line for line in out.stdout.splitlines() if line.startswith(name + " "))
        assert " running " in line, line
    assert "Leader of dc1: consul-server-" in out.stdout
    assert "Leader of dc2: consul-dc2-server" in out.stdout
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in twin.dev("env").stdout.splitlines()
    )
    assert exports["DC2_HTTP_ADDR"] == dc2(twin)[len("http://") :]
    assert exports["MESH_GATEWAY_DC1_ADMIN"] == twin.url("mesh-gateway-dc1", "admin")


def test_dc2_is_reachable_from_dc1(twin: Twin) -> None:
    assert read(dc1(twin) + "/v1/catalog/datacenters") == ["dc1", "dc2"]
    # dc2's catalog, read through dc1's agent: its api, its sidecar and its mesh gateway.
    services = read(dc1(twin) + "/v1/catalog/services?dc=dc2")
    assert {"api", "api-sidecar-proxy", "mesh-gateway", "consul"} <= set(services), services
    nodes = {n["Node"] for n in read(dc1(twin) + "/v1/catalog/nodes?dc=dc2")}
    assert nodes == {a.name for a in topo.DC2_AGENTS}
    # A write through dc1 lands in dc2 only.
    status, body = get(dc1(twin) + "/v1/kv/dev/where?dc=dc2", "PUT", "dc2")
    assert status == 200 and body.strip() == b"true", body
    assert read(dc2(twin) + "/v1/kv/dev/where?raw") == "dc2"
    assert get(dc1(twin) + "/v1/kv/dev/where")[0] == 404


def test_dc2_uses_dc1s_ca_and_config_entries(twin: Twin) -> None:
    roots1 = read(dc1(twin) + "/v1/connect/ca/roots")
    eventually(
        lambda: read(dc2(twin) + "/v1/connect/ca/roots")["TrustDomain"] == roots1["TrustDomain"],
        timeout=DEADLINE,
        what="dc2 on dc1's CA",
    )
    resolver = read(dc2(twin) + "/v1/config/service-resolver/api")
    assert resolver["Failover"] == {"*": {"Datacenters": ["dc2"]}}
    defaults = read(dc2(twin) + "/v1/config/proxy-defaults/global")
    assert defaults["MeshGateway"] == {"Mode": "local"}


def test_web_calls_dc1s_api_while_it_is_healthy(twin: Twin) -> None:
    # `up` saw web -> api work; a moment later the sidecar may still take a config update
    # (dc2's endpoints of the failover target arriving), so poll for the answer.
    upstream = eventually(lambda: web_upstream(twin), timeout=DEADLINE, what="web -> api")
    assert upstream["service"] == "api"
    assert upstream["instance"] != "api-dc2"
    assert upstream["caller"].endswith("/ns/default/dc/dc1/svc/web"), upstream


def gateway_bytes(twin: Twin, gateway: str, prefix: str) -> int:
    """Bytes a mesh gateway's Envoy received on its filter chains named `prefix`."""
    status, body = get(twin.url(gateway, "admin") + "/stats")
    assert status == 200
    total = 0
    for line in body.decode().splitlines():
        name, _, value = line.partition(": ")
        if f".{prefix}" in name and name.endswith(".downstream_cx_rx_bytes_total"):
            total += int(value)
    return total


def test_dc1s_api_stopped_web_fails_over_to_dc2_through_the_gateways(twin: Twin) -> None:
    before = gateway_bytes(twin, "mesh-gateway-dc1", "mesh_gateway_remote")
    start = time.monotonic()
    out = twin.dev("kill", "api")
    assert out.returncode == 0, out.stdout + out.stderr

    def served_by_dc2() -> bool:
        upstream = web_upstream(twin)
        return upstream is not None and upstream["instance"] == "api-dc2"

    eventually(served_by_dc2, timeout=DEADLINE, what="web's calls answered by dc2's api")
    print(f"\nfailover to dc2 after dc1's api was killed: {time.monotonic() - start:.2f} s")
    upstream = web_upstream(twin)
    assert upstream is not None
    # dc2's api sidecar saw web's dc1 certificate: mTLS end to end, through the gateways.
    assert upstream["caller"].endswith("/ns/default/dc/dc1/svc/web"), upstream
    assert gateway_bytes(twin, "mesh-gateway-dc1", "mesh_gateway_remote") > before
    assert gateway_bytes(twin, "mesh-gateway-dc2", "mesh_gateway_local") > 0
    # ... and dc1's catalog says why: its only api is critical.
    checks = read(dc1(twin) + "/v1/health/checks/api")
    assert any(c["Status"] == "critical" for c in checks), checks


def test_api_back_in_dc1_takes_the_calls_again(twin: Twin) -> None:
    out = twin.dev("up", f"-timeout={UP_TIMEOUT}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "api: started" in out.stdout
    eventually(
        lambda: (u := web_upstream(twin)) is not None and u["instance"] != "api-dc2",
        timeout=DEADLINE,
        what="web's calls answered by dc1's api again",
    )


def test_down_stops_both_datacenters(twin: Twin) -> None:
    tracked = twin.tracked()
    assert len(tracked) == len(topo.TWO_DCS.names())
    out = twin.dev("down")
    assert out.returncode == 0, out.stdout + out.stderr
    for t in tracked:
        assert not t.running(), t
        assert t.leftovers() == [], t


def test_the_state_file_remembers_dc2(twin: Twin) -> None:
    """So that a later `up`, `status` or `down` without -dc2 acts on both datacenters."""
    state = twin.state
    assert state["datacenters"] == 2
    assert {"mesh-gateway-dc1", "consul-dc2-server"} <= set(state["ports"])
