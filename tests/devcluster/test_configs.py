"""Every file in configs/ is checked the way its user would use it: agent configs and service
definitions with the real `consulpy validate` (in the combinations the agents load them),
config entries with the real `consulpy config write` against a running agent."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consulpy.config import load_config_files
from consulpy.devcluster import topology as topo
from consulpy.devcluster.cluster import config_entry_files
from tests.cli.agentproc import AgentProcess, consulpy

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

AGENT_SETS = sorted({agent.config_files for agent in topo.TWO_DCS.agents})
WRITERS = topo.TWO_DCS.writers
# The JSON twins of the service definitions, loaded the way the HCL ones are.
JSON_SETS = [
    tuple(str(Path(p).with_suffix(".json")) if p.startswith("services/") else p for p in files)
    for files in AGENT_SETS
    if any(p.startswith("services/") for p in files)
]


def all_config_files() -> set[str]:
    return {str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*") if p.is_file()}


def test_every_file_in_configs_is_checked_here() -> None:
    checked = {p for files in AGENT_SETS + JSON_SETS for p in files}
    for writer in WRITERS:
        checked |= {str(p.relative_to(CONFIGS)) for p in config_entry_files(CONFIGS, writer)}
    checked.add(topo.DNS_POLICY_FILE)
    checked |= set(OBSERVABILITY_FILES)
    assert all_config_files() == checked


OBSERVABILITY_FILES = (
    "observability/prometheus.yml",
    "observability/grafana/provisioning/datasources/prometheus.yml",
    "observability/grafana/provisioning/dashboards/consulpy.yml",
    "observability/grafana/dashboards/consulpy.json",
)


def test_prometheus_scrapes_every_agent_and_every_sidecar() -> None:
    import yaml

    config = yaml.safe_load((CONFIGS / OBSERVABILITY_FILES[0]).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    agents = jobs["consulpy-agents"]
    assert agents["metrics_path"] == "/v1/agent/metrics"
    assert agents["params"] == {"format": ["prometheus"]}
    assert agents["authorization"]["credentials"] == topo.MANAGEMENT_TOKEN
    targets = {t for group in agents["static_configs"] for t in group["targets"]}
    assert targets == {f"{a.name}:{topo.HTTP_PORT}" for a in topo.AGENTS}
    sidecars = jobs["envoy-sidecars"]
    assert sidecars["metrics_path"] == "/metrics"
    by_service = {
        group["labels"]["service"]: group["targets"] for group in sidecars["static_configs"]
    }
    # a sidecar shares its agent's network namespace: reached at the agent's name
    assert by_service == {
        s.service_id: [f"{s.agent}:{topo.ENVOY_PROMETHEUS_PORT}"] for s in topo.SIDECARS
    }


def test_grafana_dashboard_uses_the_provisioned_data_source() -> None:
    import yaml

    datasource = yaml.safe_load((CONFIGS / OBSERVABILITY_FILES[1]).read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    dashboard = json.loads((CONFIGS / OBSERVABILITY_FILES[3]).read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for p in panels:
        assert p["datasource"]["uid"] == source["uid"], p["title"]
        assert p["targets"], p["title"]
    # what the dashboard promises: Raft, KV/catalog rates, HTTP latency, mesh rates and 5xx
    for name in (
        "consul_raft_commitTime",
        "consul_kvs_apply_count",
        "consul_catalog_register_count",
        "consul_api_http",
        "envoy_http_downstream_rq_total",
        'envoy_response_code_class="5"',
    ):
        assert name in exprs, name


def test_the_dns_policy_parses_and_only_reads() -> None:
    from consulpy.acl.rules import parse_rules

    text = (CONFIGS / topo.DNS_POLICY_FILE).read_text()
    parse_rules(text)  # raises on a syntax error
    rules = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert "write" not in rules and "key" not in rules


def test_acl_config_names_the_topology_tokens() -> None:
    (source,) = load_config_files([str(CONFIGS / "acl.hcl")])
    acl = source.data["acl"]
    acl = acl[0] if isinstance(acl, list) else acl
    text = json.dumps(acl)
    assert topo.MANAGEMENT_TOKEN in text and topo.DNS_TOKEN in text
    assert '"deny"' in text


@pytest.mark.parametrize("files", AGENT_SETS + JSON_SETS, ids=lambda f: "+".join(f))
def test_agent_configs_pass_consulpy_validate(files: tuple[str, ...]) -> None:
    out = consulpy("validate", *(str(CONFIGS / f) for f in files))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Configuration is valid!"


@pytest.mark.parametrize("name", ["api", "web"])
def test_json_service_definitions_say_what_the_hcl_ones_say(name: str) -> None:
    hcl = load_config_files([str(CONFIGS / "services" / f"{name}.hcl")])[0].data
    js = load_config_files([str(CONFIGS / "services" / f"{name}.json")])[0].data
    assert hcl == js


def test_service_files_match_the_topology() -> None:
    for app in topo.TWO_DCS.apps:
        (service,) = load_config_files([str(CONFIGS / app.service_file)])[0].data["services"]
        assert service["Name"] == service["ID"] == app.service
        assert service["Port"] == app.port
        assert service["Check"]["HTTP"] == f"http://127.0.0.1:{app.port}/health"
        config = service["Connect"]["SidecarService"]["Proxy"]["Config"]
        assert config["envoy_prometheus_bind_addr"] == f"0.0.0.0:{topo.ENVOY_PROMETHEUS_PORT}"
        upstreams = service["Connect"]["SidecarService"].get("Proxy", {}).get("Upstreams", [])
        assert [(u["DestinationName"], u["LocalBindPort"]) for u in upstreams] == list(
            app.upstreams
        )
        assert app.service_file in topo.agent_named(app.agent).config_files


def test_the_encrypt_key_is_a_real_key() -> None:
    (source,) = load_config_files([str(CONFIGS / "encrypt.hcl")])
    assert len(base64.b64decode(source.data["encrypt"], validate=True)) == 32


def test_a_broken_file_fails_validation(tmp_path: Path) -> None:
    """The validation above can fail: the same server config with a typo is refused."""
    bad = tmp_path / "server.hcl"
    bad.write_text(
        (CONFIGS / "server.hcl").read_text().replace("bootstrap_expect", "bootstrap_xpect")
    )
    out = consulpy("validate", str(bad), str(CONFIGS / "encrypt.hcl"))
    assert out.returncode == 1
    assert "bootstrap_xpect" in out.stderr


# ------------------------------------------------- a real agent loads them, config write


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    proc = AgentProcess(
        "-dev",
        "-node=configs-test",
        "-http-port=0",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-serf-lan-port=0",
        "-serf-wan-port=-1",
        "-server-port=0",
        f"-config-file={CONFIGS / 'services' / 'web.hcl'}",
        f"-config-file={CONFIGS / 'services' / 'api.json'}",
    ).start()
    try:
        yield proc
    finally:
        proc.kill()


def _get(agent: AgentProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://{agent.http_addr}{path}", timeout=10) as resp:
        return json.load(resp)


def test_an_agent_registers_the_services_and_their_sidecars(agent: AgentProcess) -> None:
    web = _get(agent, "/v1/agent/service/web-sidecar-proxy")
    assert web["Kind"] == "connect-proxy"
    assert web["Proxy"]["DestinationServiceName"] == "web"
    assert web["Proxy"]["LocalServicePort"] == 8080
    assert [(u["DestinationName"], u["LocalBindPort"]) for u in web["Proxy"]["Upstreams"]] == [
        ("api", 9191)
    ]
    api = _get(agent, "/v1/agent/service/api-sidecar-proxy")
    assert api["Proxy"]["DestinationServiceName"] == "api"
    assert api["Proxy"]["LocalServicePort"] == 9090
    checks = _get(agent, "/v1/agent/checks")
    assert {c["CheckID"] for c in checks.values()} >= {"api-http", "web-http"}


def test_config_entries_pass_consulpy_config_write(agent: AgentProcess) -> None:
    files = [f for writer in WRITERS for f in config_entry_files(CONFIGS, writer)]
    assert files, "no config entries in configs/intentions"
    for path in files:
        out = consulpy("config", "write", f"-http-addr={agent.http_addr}", str(path))
        assert out.returncode == 0, (path.name, out.stderr)
        assert out.stdout.startswith("Config entry written: ")
    out = consulpy(
        "config", "read", f"-http-addr={agent.http_addr}", "-kind=service-intentions", "-name=api"
    )
    assert out.returncode == 0, out.stderr
    entry = json.loads(out.stdout)
    assert [(s["Name"], s["Action"]) for s in entry["Sources"]] == [("web", "allow")]
    for name in ("api", "web"):
        out = consulpy(
            "config",
            "read",
            f"-http-addr={agent.http_addr}",
            "-kind=service-defaults",
            f"-name={name}",
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Protocol"] == "http"
    out = consulpy("intention", "check", f"-http-addr={agent.http_addr}", "web", "api")
    assert out.returncode == 0 and out.stdout.strip() == "Allowed"
    # dc2's: sidecars dial other datacenters through their local gateway; api fails over.
    out = consulpy(
        "config", "read", f"-http-addr={agent.http_addr}", "-kind=proxy-defaults", "-name=global"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["MeshGateway"] == {"Mode": "local"}
    out = consulpy(
        "config", "read", f"-http-addr={agent.http_addr}", "-kind=service-resolver", "-name=api"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Failover"] == {"*": {"Datacenters": [topo.DC2]}}
