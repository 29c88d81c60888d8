"""docker-compose.yml against consulpy/devcluster/topology.py, which the twin runs: same
services, same config files, same commands (compose's addresses and ports), same network
namespaces, and dc2's services (and only they) behind the `dc2` profile. No docker engine is
needed: the file is parsed with PyYAML."""

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
ALL = topo.TWO_DCS
DC2_ONLY = {*ALL.names(), topo.DC2_CONFIG_WRITER.name} - {*topo.names(), topo.CONFIG_WRITER.name}


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
    writers = {w.name for w in ALL.writers}
    assert set(services) == {*ALL.names(), *writers, *topo.OBSERVABILITY}


def test_dc2_is_a_profile(services: dict[str, Any]) -> None:
    """`compose up` runs dc1 alone, as before; `--profile dc2` adds dc2 and the gateways."""
    assert {
        "consul-dc2-server",
        "consul-dc2-client",
        "api-dc2",
        "api-dc2-sidecar",
        "mesh-gateway-dc1",
        "mesh-gateway-dc2",
        "consul-config-dc2",
    } == DC2_ONLY
    for name, service in services.items():
        if name in topo.OBSERVABILITY:
            continue
        want = [topo.DC2_PROFILE] if name in DC2_ONLY else None
        assert service.get("profiles") == want, name
        if name not in DC2_ONLY:  # dc1 must start without dc2's services
            assert not set(depends(service)) & DC2_ONLY, name


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


@pytest.mark.parametrize("agent", ALL.agents, ids=lambda a: a.name)
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


@pytest.mark.parametrize("app", ALL.apps, ids=lambda a: a.name)
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


@pytest.mark.parametrize("sidecar", ALL.sidecars, ids=lambda s: s.name)
def test_sidecars(services: dict[str, Any], sidecar: topo.Sidecar) -> None:
    service = services[sidecar.name]
    assert [str(a) for a in service["command"]] == topo.sidecar_command(sidecar, PLACES)
    assert service["network_mode"] == f"service:{sidecar.agent}"
    assert depends(service)[sidecar.agent] == "service_healthy"
    assert depends(service)[topo.app_of(sidecar).name] == "service_started"
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{topo.ENVOY_ADMIN_PORT}/ready"


@pytest.mark.parametrize("gateway", ALL.gateways, ids=lambda g: g.name)
def test_gateways(services: dict[str, Any], gateway: topo.Gateway) -> None:
    service = services[gateway.name]
    assert [str(a) for a in service["command"]] == topo.gateway_command(gateway, PLACES)
    assert service["network_mode"] == f"service:{gateway.agent}"
    assert depends(service) == {gateway.agent: "service_healthy"}
    assert service["restart"] == "on-failure"  # until consul-config-dc2 made its token
    admin = PLACES.admin_bind(gateway).rsplit(":", 1)[1]
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{admin}/ready"
    assert gateway.service in topo.hosted_services(topo.agent_named(gateway.agent))


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


@pytest.mark.parametrize("writer", ALL.writers, ids=lambda w: w.name)
def test_the_config_writers(services: dict[str, Any], writer: topo.ConfigWriter) -> None:
    service = services[writer.name]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    assert unescape(service["command"]) == [topo.config_writer_script(writer)]
    # It writes through dc1, once an agent of its datacenter is healthy too.
    assert set(depends(service).values()) == {"service_healthy"}
    assert writer.agent in depends(service)
    assert {topo.agent_named(dep).datacenter for dep in depends(service)} == {
        topo.DATACENTER,
        writer.datacenter,
    }
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
    token = re.sub(
        r"(127\.0\.0\.1|0\.0\.0\.0|consul-(server|client)-\d|consul-dc2-(server|client))(:\d+)?",
        "<addr>",
        token,
    )
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
    twin = DevCluster(tmp_path / "dev", CONFIGS, datacenters=2)
    twin.prepare()
    generated = {str(twin._service_file_path(app)): app.service_file for app in ALL.apps}
    for component in ALL.components():
        mine = twin.command(component)
        theirs = [str(a) for a in services[component.name]["command"]]
        if isinstance(component, topo.Gateway):  # the twin's gateways say where they listen
            flags = twin.places().gateway_flags(component)
            at = mine.index(flags[0])
            assert mine[at : at + len(flags)] == flags
            del mine[at : at + len(flags)]
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


@pytest.mark.parametrize("datacenters", [1, 2])
def test_the_twin_uses_distinct_ports(tmp_path: Path, datacenters: int) -> None:
    twin = DevCluster(tmp_path / "dev", CONFIGS, datacenters=datacenters)
    twin.prepare()
    ports = [p for component in twin.ports.values() for p in component.values()]
    assert len(ports) == len(set(ports))


def test_the_twin_service_files_differ_only_in_ports(tmp_path: Path) -> None:
    """What the twin's clients load: configs/services/*.hcl with only the ports mapped, the
    sidecar given its port, and its public listener on 127.0.0.1."""
    import json

    from consulpy.config import load_config_files

    twin = DevCluster(tmp_path / "dev", CONFIGS, datacenters=2)
    twin.prepare()
    for app in ALL.apps:
        original = load_config_files([str(CONFIGS / app.service_file)])[0].data
        rewritten = json.loads(twin._service_file_path(app).read_text())
        ports = twin.ports[app.name]
        text = json.dumps(rewritten)
        assert str(app.port) not in text
        (service,) = rewritten["services"]
        assert service["Port"] == ports["port"]
        assert service["Check"]["HTTP"] == f"http://127.0.0.1:{ports['port']}/health"
        sidecar = service["Connect"]["SidecarService"]
        proxy_of = topo.sidecar_of(app)
        assert proxy_of is not None
        sidecar_name = proxy_of.name
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
