"""The docker-free twin end to end, with real processes: `consulpy dev-cluster up` in a
temporary directory, then what docs/getting-started.md walks through: members and leader,
KV through a client, web -> api through the Envoy sidecars, a deny intention blocking it and
its removal letting it through, kill -9 of the leader with the cluster still taking writes,
`up` bringing the killed server back, and `down` leaving no process behind.

The tests run in file order on one cluster (module fixture). Everything is polled with a
deadline, nothing sleeps for synchronisation. Everything binds 127.0.0.1 on OS-chosen ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from consulpy.devcluster import procs
from consulpy.devcluster import topology as topo
from tests.cluster.harness import eventually
from tests.devcluster import observability as obs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
UP_TIMEOUT = "60s"
SERF_SOURCE = (ROOT / "consulpy" / "gossip" / "serf.py").read_text()


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL")}
    return subprocess.run(
        [sys.executable, "-m", "consulpy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


TOKEN = topo.MANAGEMENT_TOKEN  # the dev cluster's (dev-only) management token


def get(
    url: str, method: str = "GET", body: Any = None, token: str | None = TOKEN
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-Consul-Token": token} if token else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Twin:
    data: Path
    up: subprocess.CompletedProcess[str]

    def dev(self, *args: str) -> subprocess.CompletedProcess[str]:
        command, rest = args[0], args[1:]
        return run("dev-cluster", command, f"-data-dir={self.data}", *rest)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.data / "cluster.json").read_text())

    def http(self, name: str) -> str:
        return f"http://127.0.0.1:{self.state['ports'][name]['http']}"

    def url(self, name: str, key: str = "port") -> str:
        return f"http://127.0.0.1:{self.state['ports'][name][key]}"

    def tracked(self) -> list[procs.Tracked]:
        return [
            procs.Tracked(name, rec["pid"], rec.get("started"))
            for name, rec in self.state["processes"].items()
            if rec.get("pid")
        ]

    def leader(self, via: str) -> str | None:
        status, body = get(self.http(via) + "/v1/status/leader")
        if status != 200:
            return None
        address = json.loads(body)
        for server in topo.SERVERS:
            if address == f"127.0.0.1:{self.state['ports'][server.name]['server']}":
                return server.name
        return None

    def all_alive(self, names: list[str]) -> bool:
        for agent in names:
            status, body = get(self.http(agent) + "/v1/agent/members")
            if status != 200:
                return False
            seen = {m["Name"]: m["Status"] for m in json.loads(body)}
            if any(seen.get(a.name) != 1 for a in topo.AGENTS):
                return False
        return True

    def output(self) -> str:
        return f"--- up stdout:\n{self.up.stdout}\n--- up stderr:\n{self.up.stderr}"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    data = tmp_path_factory.mktemp("devcluster") / "dev"
    up = run(
        "dev-cluster",
        "up",
        f"-data-dir={data}",
        f"-configs-dir={CONFIGS}",
        f"-timeout={UP_TIMEOUT}",
    )
    handle = Twin(data, up)
    try:
        assert (data / "cluster.json").exists(), handle.output()
        yield handle
    finally:
        if (data / "cluster.json").exists():
            run("dev-cluster", "down", f"-data-dir={data}", "-timeout=10s")
            for tracked in handle.tracked():  # whatever `down` may have missed
                tracked.signal(signal.SIGKILL)


def test_leader_and_all_members_alive(twin: Twin) -> None:
    names = [a.name for a in topo.AGENTS]
    eventually(
        lambda: len({twin.leader(n) for n in names}) == 1 and twin.leader(names[0]),
        timeout=30,
        what="one leader seen by every agent\n" + twin.output(),
    )
    eventually(lambda: twin.all_alive(names), timeout=30, what="all members alive everywhere")


def test_status_lists_every_process_and_the_leader(twin: Twin) -> None:
    out = twin.dev("status")
    assert out.returncode == 0, out.stdout + out.stderr
    for name in topo.names():
        line = next(line for line in out.stdout.splitlines() if line.startswith(name + " "))
        assert " running " in line, line
    assert "Leader: consul-server-" in out.stdout


def test_kv_through_the_clients(twin: Twin) -> None:
    writer, reader = (a.name for a in topo.CLIENTS)
    auth = f"-token={TOKEN}"
    put = run("kv", "put", auth, f"-http-addr={twin.http(writer)[7:]}", "dev/greeting", "hello")
    assert put.returncode == 0, put.stderr
    got = run("kv", "get", auth, f"-http-addr={twin.http(reader)[7:]}", "dev/greeting")
    assert got.returncode == 0 and got.stdout == "hello\n", got


def test_acls_deny_anonymous_writes_and_reads_but_let_it_find_services(twin: Twin) -> None:
    client = topo.CLIENTS[0].name
    put = run("kv", "put", f"-http-addr={twin.http(client)[7:]}", "dev/anonymous", "no")
    assert put.returncode != 0 and "Permission denied" in put.stderr, put
    status, body = get(twin.http(client) + "/v1/kv/dev/greeting", token=None)
    assert status in (403, 404), body
    status, body = get(twin.http(client) + "/v1/kv/dev/anonymous", token=TOKEN)
    assert status == 404, body  # the refused write changed nothing
    # The default (DNS) token reads services: what `dig web.service.consul` answers with.
    status, body = get(twin.http(client) + "/v1/catalog/services", token=None)
    assert status == 200 and "web" in json.loads(body), body
    # Every agent runs with its node-identity agent token: all nodes registered themselves.
    status, body = get(twin.http(client) + "/v1/catalog/nodes")
    assert status == 200
    assert {n["Node"] for n in json.loads(body)} == {a.name for a in topo.AGENTS}


def test_env_points_at_the_cluster(twin: Twin) -> None:
    out = twin.dev("env")
    assert out.returncode == 0, out.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    assert exports["CONSUL_HTTP_ADDR"] == twin.http("consul-client-1")[7:]
    assert exports["WEB_URL"] == twin.url("web")
    assert exports["CONSUL_HTTP_TOKEN"] == TOKEN


def web_answer(twin: Twin) -> tuple[int, str]:
    status, body = get(twin.url("web") + "/")
    return status, body.decode("utf-8", "replace")


def test_web_calls_api_through_the_sidecars(twin: Twin) -> None:
    # The whole of `up`, sidecars included, must have worked: this is the mesh test.
    assert twin.up.returncode == 0, twin.output()
    status, body = web_answer(twin)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["service"] == "web"
    assert answer["upstream"]["service"] == "api"
    # api's sidecar saw web's certificate and passed its SPIFFE ID on (X-Forwarded-Client-
    # Cert): the call went through both sidecars, over mTLS.
    assert answer["upstream"]["caller"].endswith("/ns/default/dc/dc1/svc/web"), answer
    for sidecar in topo.SIDECARS:
        status, _ = get(twin.url(sidecar.name, "admin") + "/ready")
        assert status == 200


def test_agents_and_sidecars_serve_prometheus_metrics(twin: Twin) -> None:
    """What configs/observability/prometheus.yml scrapes in compose, on the twin's ports."""
    for sidecar in topo.SIDECARS:
        status, body = get(twin.url(sidecar.name, "metrics") + "/metrics", token=None)
        assert status == 200 and b"envoy_http_downstream_rq_total" in body, sidecar.name
    for agent in topo.AGENTS:
        url = twin.http(agent.name) + "/v1/agent/metrics?format=prometheus"
        status, body = get(url)
        assert status == 200, (agent.name, body[:200])
        assert b"consul_api_http" in body or b"consul_runtime_alloc_bytes" in body
        if agent.server:
            assert b"# TYPE consul_raft_apply counter" in body or b"consul_raft_fsm_apply" in body


def test_prometheus_scrapes_the_twin_with_the_checked_in_config(twin: Twin, tmp_path: Path) -> None:
    """A real Debian `prometheus` runs configs/observability/prometheus.yml (its targets
    turned into the twin's ports): every agent and sidecar target is up and the consul_ and
    envoy_ series the dashboard plots can be queried."""
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(obs.twin_config(twin.state["ports"])))
    for path in (obs.PROMETHEUS_YML, config):
        checked = obs.promtool_check(path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    prometheus = obs.Prometheus(config, tmp_path).start()
    try:
        expected = {(obs.AGENTS_JOB, a.name) for a in topo.AGENTS} | {
            (obs.SIDECARS_JOB, s.name) for s in topo.SIDECARS
        }

        def all_up() -> bool:
            targets = prometheus.targets()
            return len(targets) == len(expected) and all(t["health"] == "up" for t in targets)

        try:
            eventually(all_up, timeout=90, what="every target up")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{prometheus.targets()}\n{prometheus.output()}") from None
        for target in prometheus.targets():  # the checked-in labels came along
            labels = target["labels"]
            if labels["job"] == obs.AGENTS_JOB:
                assert labels["node"] == "127.0.0.1"  # the host part, by the relabel rule
                assert labels["role"] in ("server", "client")
                assert target["scrapeUrl"].endswith("/v1/agent/metrics?format=prometheus")
            else:
                assert labels["service"] in ("web", "api")

        def series(expr: str, count: int) -> bool:
            return len(prometheus.query(expr)) >= count

        servers = len(topo.SERVERS)
        for expr, count in (
            ("consul_runtime_alloc_bytes", len(topo.AGENTS)),
            ("consul_server_isLeader", servers),
            ('consul_raft_commitTime{quantile="0.99"}', 1),
            ('envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="public_listener"}', 2),
        ):
            eventually(
                lambda expr=expr, count=count: series(expr, count),
                timeout=60,
                what=f"{expr}: {count} series",
            )
        assert sum(float(r["value"][1]) for r in prometheus.query("consul_server_isLeader")) == 1
    finally:
        prometheus.stop()


# Dashboard series that only exist once their event happened (consulpy declares no series
# up front, docs/observability.md): gossip failures and flaps, upstream 5xx.
EVENT_ONLY = {
    "consul_serf_member_failed",
    "consul_serf_member_flap",
    "envoy_cluster_upstream_rq_xx",
}


def exposed_names(twin: Twin) -> set[str]:
    """Every sample name the agents and the sidecars serve to a Prometheus scrape."""
    names: set[str] = set()
    urls = [twin.http(a.name) + "/v1/agent/metrics?format=prometheus" for a in topo.AGENTS]
    urls += [twin.url(s.name, "metrics") + "/metrics" for s in topo.SIDECARS]
    for url in urls:
        status, body = get(url)
        assert status == 200, (url, body[:200])
        # Names as the text carries them (the client's parser renames counters `_total`).
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_metric_the_grafana_dashboard_queries_is_exposed(twin: Twin) -> None:
    client = twin.http(topo.CLIENTS[0].name)
    # The writes the dashboard's rate panels count: KV, a transaction, a session, a catalog
    # registration and its removal.
    assert get(client + "/v1/kv/dev/dashboard", "PUT", "x")[0] == 200
    txn = [{"KV": {"Verb": "set", "Key": "dev/dashboard", "Value": "eA=="}}]
    assert get(client + "/v1/txn", "PUT", txn)[0] == 200
    status, body = get(client + "/v1/session/create", "PUT", {"Name": "dashboard"})
    assert status == 200, body
    session = json.loads(body)["ID"]
    assert get(client + f"/v1/session/destroy/{session}", "PUT")[0] == 200
    node = {"Node": "dashboard-probe", "Address": "127.0.0.2"}
    assert get(client + "/v1/catalog/register", "PUT", node)[0] == 200
    assert get(client + "/v1/catalog/deregister", "PUT", {"Node": "dashboard-probe"})[0] == 200

    wanted, patterns = obs.dashboard_metrics()
    assert len(wanted) > 20 and patterns, (wanted, patterns)

    def missing() -> set[str]:
        return wanted - exposed_names(twin) - EVENT_ONLY

    try:
        eventually(lambda: not missing(), timeout=60, what="the dashboard's metrics exposed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; not exposed: {sorted(missing())}") from None
    names = exposed_names(twin)
    for pattern in patterns:
        assert any(re.fullmatch(pattern, n) for n in names), pattern
    # The event-only ones are consulpy's (or Envoy's) real names, recorded when it happens.
    for name in EVENT_ONLY:
        if name.startswith("consul_"):
            dotted = name.removeprefix("consul_").replace("_", ".")
            assert dotted in SERF_SOURCE, name


def test_a_deny_intention_blocks_web_and_an_allow_lets_it_through_again(twin: Twin) -> None:
    addr = f"-http-addr={twin.http('consul-client-1')[7:]}"
    refused = run("intention", "create", addr, "-replace", "-deny", "web", "api")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused
    auth = f"-token={TOKEN}"
    out = run("intention", "create", addr, auth, "-replace", "-deny", "web", "api")
    assert out.returncode == 0, out.stderr

    def denied() -> bool:
        status, body = web_answer(twin)
        return status == 502 and "403" in body

    eventually(denied, timeout=15, what="web's calls to api denied")
    _, body = web_answer(twin)
    assert body.startswith("web: the call to the upstream at http://127.0.0.1:"), body

    # Deleting it would leave no intention, and with ACLs default deny the default intention
    # decision is deny too: allow it again explicitly.
    out = run("intention", "create", addr, auth, "-replace", "-allow", "web", "api")
    assert out.returncode == 0, out.stderr
    eventually(lambda: web_answer(twin)[0] == 200, timeout=15, what="web -> api allowed again")


def test_kill_9_of_the_leader_and_the_cluster_keeps_serving(twin: Twin) -> None:
    client = topo.CLIENTS[0].name
    leader = eventually(lambda: twin.leader(client), timeout=15, what="a leader")
    pid = twin.state["processes"][leader]["pid"]
    os.kill(pid, signal.SIGKILL)
    eventually(
        lambda: not procs.is_running(pid, twin.state["processes"][leader]["started"]),
        timeout=10,
        what="the leader gone",
    )
    new_leader = eventually(
        lambda: (name := twin.leader(client)) not in (None, leader) and name,
        timeout=30,
        what="a new leader",
    )
    assert new_leader != leader

    def write() -> bool:
        status, body = get(twin.http(client) + "/v1/kv/dev/after-failover", "PUT", "still here")
        return status == 200 and body.strip() == b"true"

    eventually(write, timeout=20, what="a write after the leader died")
    status, body = get(twin.http(topo.CLIENTS[1].name) + "/v1/kv/dev/after-failover?raw")
    assert status == 200 and json.loads(body) == "still here"

    out = twin.dev("status")
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if line.startswith(leader + " "))
    assert " exited " in line, out.stdout

    # `up` starts what is missing: the killed server comes back on its ports and data.
    out = twin.dev("up", f"-timeout={UP_TIMEOUT}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{leader}: started" in out.stdout
    assert "consul-client-1: already running" in out.stdout
    names = [a.name for a in topo.AGENTS]
    eventually(lambda: twin.all_alive(names), timeout=30, what="all members alive again")
    status, body = get(twin.http(leader) + "/v1/kv/dev/after-failover?raw&stale")
    assert status == 200, body


def test_down_leaves_no_process_behind(twin: Twin) -> None:
    tracked = twin.tracked()
    assert len(tracked) == len(topo.names())
    assert all(t.running() for t in tracked)
    out = twin.dev("down")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SIGKILL" not in out.stdout, out.stdout  # everything stopped on SIGTERM
    for t in tracked:
        assert not t.running(), t
        assert t.leftovers() == [], t
    for agent in topo.AGENTS:
        with pytest.raises(urllib.error.URLError):
            get(twin.http(agent.name) + "/v1/status/leader")
    out = twin.dev("status")
    assert out.returncode == 1
    assert out.stdout.count(" stopped ") == len(topo.names())
