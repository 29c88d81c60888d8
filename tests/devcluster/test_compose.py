"""docker-compose.yml against consulpy/devcluster/topology.py, which the twin runs: same
services, same config files, same commands (compose's addresses and ports), same network
namespaces. No docker engine is needed: the file is parsed with PyYAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from consulpy.devcluster import topology as topo
from consulpy.devcluster.cluster import (
    LOOPBACK,
    DevCluster,
    config_entry_files,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
PLACES = topo.ComposePlaces()
CONFIG_VOLUME = f"./configs:{topo.CONFIG_MOUNT}:ro"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def unescape(value: Any) -> Any:
    """What the container gets: compose turns `$$` into `$`, and a lone `$` would be an
    interpolated variable (not something our commands want)."""
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if not isinstance(value, str):
        return value
    parts = value.split("$$")
    assert not any("$" in part for part in parts), f"unescaped $ in {value!r}"
    return "$".join(parts)


def depends(service: dict[str, Any]) -> dict[str, str]:
    """depends_on in either syntax, as {service: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def test_same_services(services: dict[str, Any]) -> None:
    assert set(services) == {*topo.names(), topo.CONFIG_WRITER.name, *topo.OBSERVABILITY}


def test_every_container_runs_the_image_of_the_dockerfile(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in topo.OBSERVABILITY:
            continue
        assert service["build"] == ".", name
        assert service["image"] == "consulpy:dev", name
        assert CONFIG_VOLUME in service["volumes"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "pip install '/src[envoy]'" in dockerfile
    assert 'ENTRYPOINT ["consulpy"]' in dockerfile


@pytest.mark.parametrize("agent", topo.AGENTS, ids=lambda a: a.name)
def test_agents(services: dict[str, Any], compose: dict[str, Any], agent: topo.Agent) -> None:
    service = services[agent.name]
    assert service["command"] == topo.agent_command(agent, PLACES)
    assert "network_mode" not in service  # its own container, reachable by its name
    assert service.get("ports", []) == list(agent.publish)
    assert service["healthcheck"]["test"] == ["CMD", "consulpy", "operator", "raft", "list-peers"]
    if agent.server:
        volume = f"{agent.name}-data"
        assert f"{volume}:{topo.DATA_MOUNT}" in service["volumes"]
        assert volume in compose["volumes"]


@pytest.mark.parametrize("app", topo.APPS, ids=lambda a: a.name)
def test_apps(services: dict[str, Any], app: topo.App) -> None:
    service = services[app.name]
    assert service["command"] == topo.app_command(app, PLACES)
    assert service["network_mode"] == f"service:{app.agent}"
    assert app.agent in depends(service)
    assert service["healthcheck"]["test"] == [
        "CMD",
        "consulpy",
        "demo",
        "probe",
        f"http://127.0.0.1:{app.port}/health",
    ]
    if app.public:  # published by the agent whose network namespace it shares
        assert f"{app.port}:{app.port}" in services[app.agent]["ports"]


@pytest.mark.parametrize("sidecar", topo.SIDECARS, ids=lambda s: s.name)
def test_sidecars(services: dict[str, Any], sidecar: topo.Sidecar) -> None:
    service = services[sidecar.name]
    assert [str(a) for a in service["command"]] == topo.sidecar_command(sidecar, PLACES)
    assert service["network_mode"] == f"service:{sidecar.agent}"
    assert depends(service)[sidecar.agent] == "service_healthy"
    assert depends(service)[sidecar.service_id] == "service_started"
    assert topo.app_named(sidecar.service_id).agent == sidecar.agent
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{topo.ENVOY_ADMIN_PORT}/ready"


def test_observability_services_are_opt_in_and_configured_from_configs(
    services: dict[str, Any],
) -> None:
    """Prometheus and Grafana come from Docker Hub: a plain `compose up` (and
    scripts/compose-e2e) must not need them, so they sit behind a profile."""
    for name in topo.OBSERVABILITY:
        service = services[name]
        assert service["profiles"] == ["observability"], name
        assert service["image"].startswith("docker.io/"), name
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            assert source.startswith("./configs/observability/"), volume
            assert (ROOT / source).exists(), volume
    assert "9090:9090" in services["prometheus"]["ports"]
    assert "3000:3000" in services["grafana"]["ports"]


def test_the_config_writer(services: dict[str, Any]) -> None:
    writer = topo.CONFIG_WRITER
    service = services[writer.name]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    assert unescape(service["command"]) == [topo.config_writer_script(writer)]
    assert depends(service) == {writer.agent: "service_healthy"}
    assert service["restart"] == "on-failure"
    assert config_entry_files(CONFIGS, writer)


def test_every_config_file_named_in_compose_exists(services: dict[str, Any]) -> None:
    named = set()
    for service in services.values():
        for token in unescape(service.get("command") or []):
            for match in re.finditer(rf"{topo.CONFIG_MOUNT}/([\w./*-]+)", str(token)):
                named.add(match.group(1))
    assert named, "no config file found in the commands"
    for rel in named:
        matches = list(CONFIGS.glob(rel))
        assert matches, f"docker-compose.yml names configs/{rel}, which does not exist"


# ------------------------------------------------------------------ the twin


def normalise(token: str, generated: dict[str, str], configs: Path) -> str:
    """A command token with places abstracted: config paths, addresses and ports."""
    for path, rel in generated.items():
        token = token.replace(path, f"<configs>/{rel}")
    token = token.replace(str(configs), "<configs>").replace(topo.CONFIG_MOUNT, "<configs>")
    token = re.sub(r"(127\.0\.0\.1|0\.0\.0\.0|consul-(server|client)-\d)(:\d+)?", "<addr>", token)
    return re.sub(r"(?<=--port=)\d+$", "<port>", token)


TWIN_ONLY_FLAGS = {
    "-data-dir",
    "-bind",
    "-client",
    "-http-port",
    "-server-port",
    "-serf-lan-port",
    "-serf-wan-port",
    "-dns-port",
    "-grpc-port",
}


def test_the_twin_runs_the_same_commands_modulo_places(
    services: dict[str, Any], tmp_path: Path
) -> None:
    twin = DevCluster(tmp_path / "dev", CONFIGS)
    twin.prepare()
    generated = {str(twin._service_file_path(app)): app.service_file for app in topo.APPS}
    for component in (*topo.AGENTS, *topo.APPS, *topo.SIDECARS):
        mine = twin.command(component)
        theirs = [str(a) for a in services[component.name]["command"]]
        if isinstance(component, topo.Agent):
            extra = mine[len(theirs) :]
            mine = mine[: len(theirs)]
            assert {flag.split("=", 1)[0] for flag in extra} <= TWIN_ONLY_FLAGS, extra
            assert f"-data-dir={tmp_path / 'dev' / component.name}" in extra
        assert [normalise(t, generated, CONFIGS) for t in mine] == [
            normalise(t, generated, CONFIGS) for t in theirs
        ], component.name
        # ... and the twin binds loopback only.
        for token in mine:
            assert "0.0.0.0" not in token, (component.name, token)


def test_the_twin_uses_distinct_ports(tmp_path: Path) -> None:
    twin = DevCluster(tmp_path / "dev", CONFIGS)
    twin.prepare()
    ports = [p for component in twin.ports.values() for p in component.values()]
    assert len(ports) == len(set(ports))


def test_the_twin_service_files_differ_only_in_ports(tmp_path: Path) -> None:
    """What the twin's clients load: configs/services/*.hcl with only the ports mapped, the
    sidecar given its port, and its public listener on 127.0.0.1."""
    import json

    from consulpy.config import load_config_files

    twin = DevCluster(tmp_path / "dev", CONFIGS)
    twin.prepare()
    for app in topo.APPS:
        original = load_config_files([str(CONFIGS / app.service_file)])[0].data
        rewritten = json.loads(twin._service_file_path(app).read_text())
        ports = twin.ports[app.name]
        text = json.dumps(rewritten)
        assert str(app.port) not in text
        (service,) = rewritten["services"]
        assert service["Port"] == ports["port"]
        assert service["Check"]["HTTP"] == f"http://127.0.0.1:{ports['port']}/health"
        sidecar = service["Connect"]["SidecarService"]
        sidecar_name = next(s.name for s in topo.SIDECARS if s.service_id == app.name)
        assert sidecar.pop("Port") == twin.ports[sidecar_name]["public"]
        proxy = sidecar["Proxy"]
        assert proxy["Config"].pop("bind_address") == LOOPBACK
        metrics = twin.ports[sidecar_name]["metrics"]
        assert proxy["Config"]["envoy_prometheus_bind_addr"] == f"{LOOPBACK}:{metrics}"
        proxy["Config"]["envoy_prometheus_bind_addr"] = f"0.0.0.0:{topo.ENVOY_PROMETHEUS_PORT}"
        if not proxy["Config"]:
            del proxy["Config"]
        for upstream in proxy.get("Upstreams", []):
            service_name = upstream["DestinationName"]
            assert upstream["LocalBindPort"] == ports[f"upstream:{service_name}"]
            upstream["LocalBindPort"] = dict(app.upstreams)[service_name]
        if not proxy:
            del sidecar["Proxy"]
        service["Port"] = app.port
        service["Check"]["HTTP"] = f"http://127.0.0.1:{app.port}/health"
        assert rewritten == original
