"""The docker-free twin of docker-compose.yml: the topology of `topology.py` as local processes.

Every process runs the command compose runs (`consulpy agent`, `consulpy demo`, `consulpy
connect envoy`), built by `topology.py` from the same `configs/` files, with these differences,
all about where things listen:

* everything binds 127.0.0.1, on ports the OS picks once and that are kept in the state file
  (Raft knows servers by address, so a restarted server must come back on its old ports);
* agents get flags that override their files: `-data-dir`, `-bind`, `-client`, and the ports
  (`-http-port`, `-server-port`, `-serf-lan-port`, `-serf-wan-port` on servers, `-grpc-port`
  on clients; DNS off);
* mesh gateways (`up -dc2`) get `-address` and `-wan-address` 127.0.0.1:<their port>;
* the service definitions the clients load are configs/services/*.hcl rewritten to
  <data-dir>/config/<agent>/<service>.json with only the ports changed (the app's port, its
  check URLs and its upstreams' local bind ports), the sidecar's port set, and the sidecar's
  public listener bound to 127.0.0.1 (`proxy.config.bind_address`).

State (ports, pids, commands) lives in <data-dir>/cluster.json; data and logs under
<data-dir>/<name> and <data-dir>/logs/<name>.log. `up` starts whatever is not running (so it
also restarts a killed server) and returns once the cluster serves: a leader every agent
agrees on, all members alive, config entries written, apps healthy, sidecars configured and
web -> api answering through them. `down` stops everything (SIGTERM, SIGKILL after a deadline).

`up -dc2` runs topology.TWO_DCS: dc2's processes and a mesh gateway per datacenter too; the
state file remembers it, so later commands (`up`, `down`, `status`) act on both.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from consulpy.devcluster import procs
from consulpy.devcluster import topology as topo
from consulpy.util.ports import free_port

STATE_FILE = "cluster.json"
DEFAULT_DATA_DIR = ".consulpy-dev"
LOOPBACK = "127.0.0.1"
POLL = 0.1

Component = topo.Agent | topo.App | topo.Sidecar | topo.Gateway


class DevClusterError(Exception):
    pass


# ---------------------------------------------------------------------- locations
# The dev cluster's configs ship inside the package (a link to the checkout's configs/ in a
# source tree, real files in a wheel), so `dev-cluster up` works from any directory.
PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"


def find_configs_dir(explicit: str | Path | None = None) -> Path:
    """`explicit` (-configs-dir), else the configs shipped with the package."""
    candidate = Path(explicit) if explicit else PACKAGED_CONFIGS
    if (candidate / "server.hcl").is_file():
        return candidate.resolve()
    if explicit:
        raise DevClusterError(f"no server.hcl in the configs directory {candidate}")
    raise DevClusterError(
        f"the configs shipped with consulpy are missing ({candidate}): reinstall the package "
        "or pass -configs-dir"
    )


def check_configs(configs: Path, layout: topo.Layout = topo.ONE_DC) -> None:
    needed = {path for a in layout.agents for path in a.config_files}
    needed |= {a.service_file for a in layout.apps}
    missing = sorted(p for p in needed if not (configs / p).is_file())
    missing += [w.directory for w in layout.writers if not (configs / w.directory).is_dir()]
    if missing:
        raise DevClusterError(f"missing in {configs}: {', '.join(missing)}")


def config_entry_files(configs: Path, writer: topo.ConfigWriter = topo.CONFIG_WRITER) -> list[Path]:
    """The files the one-shot writes, in the shell glob's order (sorted by name)."""
    return sorted((configs / writer.directory).glob(writer.pattern))


# -------------------------------------------------------------------------- ports
def _free_port(taken: set[int], udp_too: bool = False) -> int:
    """A port from the shared helper that this twin has not handed out already."""
    while True:
        port = free_port(LOOPBACK, udp=udp_too)
        if port not in taken:
            taken.add(port)
            return port


def port_names(component: Component) -> list[str]:
    """The ports a component needs in the twin (keys of its entry in the state's ports)."""
    if isinstance(component, topo.Agent):
        names = ["http", "server", "serf_lan"]
        # Servers are in the WAN pool (as in compose), so dc2 can join a running dc1.
        return [*names, "serf_wan"] if component.server else [*names, "grpc"]
    if isinstance(component, topo.App):
        return ["port", *(f"upstream:{service}" for service, _ in component.upstreams)]
    if isinstance(component, topo.Gateway):
        return ["port", "admin"]
    return ["public", "admin", "metrics"]


def allocate_ports(
    saved: dict[str, dict[str, int]], layout: topo.Layout = topo.ONE_DC
) -> dict[str, dict[str, int]]:
    """Keep saved ports, pick free ones for anything missing."""
    taken = {p for ports in saved.values() for p in ports.values()}
    out: dict[str, dict[str, int]] = dict(saved)
    for component in layout.components():
        mine = dict(saved.get(component.name, {}))
        for key in port_names(component):
            if key not in mine:
                mine[key] = _free_port(taken, udp_too=key.startswith("serf_"))
        out[component.name] = mine
    return out


class TwinPlaces:
    """Where things are in the twin: 127.0.0.1, the allocated ports, generated service files."""

    def __init__(
        self,
        configs: Path,
        ports: dict[str, dict[str, int]],
        generated: dict[tuple[str, str], Path],
    ) -> None:
        self.configs = configs
        self.ports = ports
        self.generated = generated

    def config_file(self, agent: topo.Agent, path: str) -> str:
        return str(self.generated.get((agent.name, path)) or self.configs / path)

    def join_address(self, agent: topo.Agent) -> str:
        return f"{LOOPBACK}:{self.ports[agent.name]['serf_lan']}"

    def wan_join_address(self, agent: topo.Agent) -> str:
        return f"{LOOPBACK}:{self.ports[agent.name]['serf_wan']}"

    def http_address(self, agent: topo.Agent, local: bool) -> str:
        return f"{LOOPBACK}:{self.ports[agent.name]['http']}"

    def grpc_address(self, agent: topo.Agent) -> str:
        return f"{LOOPBACK}:{self.ports[agent.name]['grpc']}"

    def app_bind(self, app: topo.App) -> str:
        return LOOPBACK

    def app_port(self, app: topo.App) -> int:
        return self.ports[app.name]["port"]

    def upstream_port(self, app: topo.App, service: str, port: int) -> int:
        return self.ports[app.name][f"upstream:{service}"]

    def admin_bind(self, sidecar: topo.Sidecar | topo.Gateway) -> str:
        return f"{LOOPBACK}:{self.ports[sidecar.name]['admin']}"

    def gateway_flags(self, gateway: topo.Gateway) -> list[str]:
        address = f"{LOOPBACK}:{self.ports[gateway.name]['port']}"
        return ["-address", address, "-wan-address", address]


def agent_overrides(agent: topo.Agent, ports: dict[str, int], data_dir: Path) -> list[str]:
    """The flags the twin adds to an agent's command: paths, addresses and ports only."""
    return [
        f"-data-dir={data_dir / agent.name}",
        f"-bind={LOOPBACK}",
        f"-client={LOOPBACK}",
        f"-http-port={ports['http']}",
        f"-server-port={ports['server']}",
        f"-serf-lan-port={ports['serf_lan']}",
        f"-serf-wan-port={ports.get('serf_wan', -1)}",
        "-dns-port=-1",
        f"-grpc-port={ports.get('grpc', -1)}",
    ]


# ----------------------------------------------------------- service definitions
_PORT_KEYS = ("Port", "LocalServicePort", "LocalBindPort")
_ADDRESS_KEYS = ("HTTP", "TCP", "UDP", "GRPC", "H2PING")
_HOST_PORT = re.compile(
    r"^(?P<head>(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?(?:\[[^\]]*\]|[^/:\[\]]*)):(?P<port>\d+)(?P<tail>(?:[/?#].*)?)$"
)


def _map_address(text: str, port_map: dict[int, int]) -> str:
    match = _HOST_PORT.match(text)
    if match is None or int(match["port"]) not in port_map:
        return text
    return f"{match['head']}:{port_map[int(match['port'])]}{match['tail']}"


def map_ports(value: Any, port_map: dict[int, int]) -> Any:
    """A copy of a definition with every port of `port_map` replaced (ports, check targets)."""
    if isinstance(value, list):
        return [map_ports(item, port_map) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _PORT_KEYS and isinstance(item, int) and item in port_map:
            out[key] = port_map[item]
        elif key in _ADDRESS_KEYS and isinstance(item, str):
            out[key] = _map_address(item, port_map)
        else:
            out[key] = map_ports(item, port_map)
    return out


def twin_service_definitions(
    source: Path,
    port_map: dict[int, int],
    sidecar_port: int | None,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """configs/services/<x>.hcl as the twin's agent loads it: ports mapped, the sidecar on
    `sidecar_port` with its public listener on 127.0.0.1, and its Envoy Prometheus listener
    (when the file asks for one) on 127.0.0.1:`metrics_port`."""
    from consulpy.config import ConfigError, load_config_files

    try:
        sources = load_config_files([str(source)])
    except ConfigError as exc:
        raise DevClusterError(str(exc)) from exc
    out: dict[str, list[Any]] = {"services": [], "checks": []}
    for src in sources:
        other = set(src.data) - set(out)
        if other:
            raise DevClusterError(
                f"{source}: the dev cluster rewrites service files and supports only services "
                f"and checks in them, not {', '.join(sorted(other))}"
            )
        for key in out:
            out[key].extend(map_ports(src.data.get(key, []), port_map))
    for service in out["services"]:
        sidecar = (service.get("Connect") or {}).get("SidecarService")
        if sidecar is None:
            continue
        if sidecar_port is not None:
            sidecar["Port"] = sidecar_port
        proxy = sidecar.setdefault("Proxy", {})
        config = proxy.setdefault("Config", {})
        config.setdefault("bind_address", LOOPBACK)
        if config.get("envoy_prometheus_bind_addr") and metrics_port is not None:
            config["envoy_prometheus_bind_addr"] = f"{LOOPBACK}:{metrics_port}"
    return {key: value for key, value in out.items() if value}


# --------------------------------------------------------------------- HTTP probes
def _get(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Consul-Token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(exc).encode()


def _get_json(url: str, token: str | None = None) -> Any:
    status, body = _get(url, token=token)
    if status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# ------------------------------------------------------------------------ cluster
class DevCluster:
    def __init__(
        self,
        data_dir: str | Path = DEFAULT_DATA_DIR,
        configs_dir: str | Path | None = None,
        out: TextIO | None = None,
        python: str = sys.executable,
        datacenters: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.state_path = self.data_dir / STATE_FILE
        self.out = out or sys.stdout
        self.python = python
        self.state = self._load()
        # None: as the state file says (1 for a new cluster). A cluster that runs dc2 keeps
        # it: `up` without -dc2 does not stop anything.
        saved = int(self.state.get("datacenters", 1))
        if datacenters is not None and datacenters < saved:
            raise DevClusterError(
                f"the dev cluster in {self.data_dir} runs {saved} datacenters; stop it with "
                "`consulpy dev-cluster down` (and -purge) to run fewer"
            )
        self.layout = topo.layout(max(saved, datacenters or 1))
        self._configs_arg = configs_dir
        self._popens: dict[str, Any] = {}
        self._expected: list[str] = []  # what this `up` has started or found running

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"version": 1, "ports": {}, "processes": {}}
        except (OSError, ValueError) as exc:
            raise DevClusterError(f"cannot read {self.state_path}: {exc}") from exc
        state.setdefault("ports", {})
        state.setdefault("processes", {})
        return state

    def _save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.state_path)

    @property
    def exists(self) -> bool:
        return self.state_path.is_file()

    @property
    def ports(self) -> dict[str, dict[str, int]]:
        return self.state["ports"]

    def tracked(self, name: str) -> procs.Tracked | None:
        record = self.state["processes"].get(name)
        if not record or not record.get("pid"):
            return None
        return procs.Tracked(name, record["pid"], record.get("started"))

    def running(self, name: str) -> bool:
        popen = self._popens.get(name)
        if popen is not None:
            return popen.poll() is None
        tracked = self.tracked(name)
        return tracked is not None and tracked.running()

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --------------------------------------------------------------- commands
    def configs(self) -> Path:
        configs = find_configs_dir(self._configs_arg or self.state.get("configs_dir"))
        check_configs(configs, self.layout)
        return configs

    def places(self) -> TwinPlaces:
        configs = Path(self.state["configs_dir"])
        generated = {
            (app.agent, app.service_file): self._service_file_path(app) for app in self.layout.apps
        }
        return TwinPlaces(configs, self.ports, generated)

    def _service_file_path(self, app: topo.App) -> Path:
        return self.data_dir / "config" / app.agent / (Path(app.service_file).stem + ".json")

    def _write_service_files(self, configs: Path) -> None:
        for app in self.layout.apps:
            ports = self.ports[app.name]
            port_map = {app.port: ports["port"]}
            for service, bind_port in app.upstreams:
                port_map[bind_port] = ports[f"upstream:{service}"]
            sidecar = topo.sidecar_of(app)
            sidecar_port = self.ports[sidecar.name]["public"] if sidecar else None
            metrics_port = self.ports[sidecar.name]["metrics"] if sidecar else None
            definitions = twin_service_definitions(
                configs / app.service_file, port_map, sidecar_port, metrics_port
            )
            path = self._service_file_path(app)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(definitions, indent=2) + "\n")

    def command(self, component: Component) -> list[str]:
        """The `consulpy` arguments of a component in the twin."""
        places = self.places()
        if isinstance(component, topo.Agent):
            return [
                *topo.agent_command(component, places),
                *agent_overrides(component, self.ports[component.name], self.data_dir),
            ]
        if isinstance(component, topo.App):
            return topo.app_command(component, places)
        if isinstance(component, topo.Gateway):
            return topo.gateway_command(component, places)
        return topo.sidecar_command(component, places)

    # --------------------------------------------------------------------- up
    def prepare(self) -> Path:
        """Find configs/, pick the ports still missing, write the twin's service definitions
        and the state file; after this `command()` gives every process's arguments."""
        configs = self.configs()
        self.state["configs_dir"] = str(configs)
        self.state["datacenters"] = len(self.layout.datacenters)
        self.state["ports"] = allocate_ports(self.ports, self.layout)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_service_files(configs)
        self._save()
        return configs

    def up(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        configs = self.prepare()
        dcs = self.layout.datacenters
        self._say(
            f"==> Starting the dev cluster in {self.data_dir} (configs: {configs}; "
            f"datacenters: {', '.join(dcs)})"
        )
        for component in (*self.layout.agents, *self.layout.apps):
            self._ensure(component)
        self._wait("every agent answers HTTP", self._agents_answer, deadline)
        for dc in dcs:
            leader = self._wait(
                f"a leader of {dc} that every agent of {dc} agrees on",
                lambda dc=dc: self.leader_name(datacenter=dc),
                deadline,
            )
            self._say(f"    leader of {dc}: {leader}")
        self._wait("every agent to see all members alive", self._members_alive, deadline)
        if len(dcs) > 1:
            self._wait("the datacenters to find each other (WAN)", self._federated, deadline)
        for writer in self.layout.writers:
            self._setup_acls(configs, writer, deadline)
            self._write_config_entries(configs, writer, deadline)
        self._wait("the sidecar proxies to be registered", self._proxies_registered, deadline)
        for proxy in (*self.layout.sidecars, *self.layout.gateways):
            self._ensure(proxy)
        self._wait("the apps' /health", self._apps_healthy, deadline)
        self._wait(
            "the Envoy sidecars and gateways to be configured (/ready)",
            self._sidecars_ready,
            deadline,
        )
        if len(dcs) > 1:  # before web -> api: web's sidecar then has the failover target too
            self._wait("dc2's api healthy, seen from dc1 (?dc=dc2)", self._dc2_api_seen, deadline)
        self._wait("web -> api through the sidecars", self._mesh_works, deadline)
        self._say("==> The dev cluster is up.")
        self.print_summary()

    def _ensure(self, component: Component) -> None:
        name = component.name
        self._expected.append(name)
        if self.running(name):
            self._say(f"    {name}: already running (pid {self.state['processes'][name]['pid']})")
            return
        argv = self.command(component)
        workdir = self.data_dir / name if isinstance(component, topo.Agent) else self.data_dir
        workdir.mkdir(parents=True, exist_ok=True)
        tracked, popen = procs.spawn(
            name, [self.python, "-m", "consulpy", *argv], self.log_path(name), cwd=workdir
        )
        self._popens[name] = popen
        self.state["processes"][name] = {
            "pid": tracked.pid,
            "started": tracked.started,
            "kind": component.kind,
            "argv": ["consulpy", *argv],
            "log": str(self.log_path(name)),
        }
        self._save()
        self._say(f"    {name}: started (pid {tracked.pid}): consulpy {' '.join(argv)}")

    def _wait(self, what: str, check: Callable[[], Any], deadline: float) -> Any:
        self._say(f"    waiting for {what}...")
        last: Any = None
        while True:
            dead = [name for name in self._expected if not self.running(name)]
            if dead:
                raise DevClusterError(
                    "\n".join(
                        f"{name} is not running; last lines of {self.log_path(name)}:\n"
                        + self.log_tail(name)
                        for name in dead
                    )
                )
            try:
                result = check()
            except Exception as exc:
                result, last = None, exc
            else:
                if result:
                    return result
                last = result
            if time.monotonic() >= deadline:
                detail = f" (last: {last})" if isinstance(last, Exception) else ""
                raise DevClusterError(f"timed out waiting for {what}{detail}")
            time.sleep(POLL)

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return "    (no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    # -------------------------------------------------------------- readiness
    def http_url(self, agent_name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[agent_name]['http']}"

    def _live_agents(self, datacenter: str | None = None) -> list[topo.Agent]:
        return [
            a
            for a in self.layout.agents
            if self.running(a.name) and datacenter in (None, a.datacenter)
        ]

    def _agents_answer(self) -> bool:
        # Any HTTP answer: until a leader exists no token resolves, so ACL'd endpoints refuse.
        return all(
            _get(self.http_url(a.name) + "/v1/status/leader")[0] != 0 for a in self.layout.agents
        )

    def leader_name(
        self, via: Iterable[topo.Agent] | None = None, datacenter: str = topo.DATACENTER
    ) -> str | None:
        """The server of `datacenter` every given (default: its running) agent names as
        leader, or None."""
        by_address = {
            f"{LOOPBACK}:{self.ports[s.name]['server']}": s.name
            for s in self.layout.servers_in(datacenter)
        }
        seen = set()
        for agent in via if via is not None else self._live_agents(datacenter):
            leader = _get_json(
                self.http_url(agent.name) + "/v1/status/leader", token=topo.MANAGEMENT_TOKEN
            )
            seen.add(by_address.get(leader) if isinstance(leader, str) else None)
        if len(seen) == 1:
            return seen.pop()
        return None

    def members(self, agent_name: str) -> dict[str, int] | None:
        """name -> status (1 = alive) as `agent_name` sees the LAN members."""
        members = _get_json(
            self.http_url(agent_name) + "/v1/agent/members", token=topo.MANAGEMENT_TOKEN
        )
        if not isinstance(members, list):
            return None
        return {m.get("Name"): m.get("Status") for m in members}

    def _members_alive(self) -> bool:
        """Every agent sees the agents of its datacenter (its LAN pool) alive."""
        for agent in self.layout.agents:
            names = {a.name for a in self.layout.agents_in(agent.datacenter)}
            members = self.members(agent.name)
            if members is None or any(members.get(n) != 1 for n in names):
                return False
        return True

    def _federated(self) -> bool:
        """Every server lists every datacenter (the WAN pool has them all)."""
        want = self.layout.datacenters
        for server in self.layout.agents:
            if not server.server:
                continue
            dcs = _get_json(
                self.http_url(server.name) + "/v1/catalog/datacenters", token=topo.MANAGEMENT_TOKEN
            )
            if not isinstance(dcs, list) or sorted(dcs) != want:
                return False
        return True

    def _dc2_api_seen(self) -> bool:
        """dc2's api passing, read through dc1's user-facing agent with ?dc=dc2."""
        url = f"{self.http_url('consul-client-1')}/v1/health/service/api?dc={topo.DC2}&passing=1"
        return bool(_get_json(url, token=topo.MANAGEMENT_TOKEN))

    def _setup_acls(self, configs: Path, writer: topo.ConfigWriter, deadline: float) -> None:
        """The config job's ACL steps (topology.acl_setup_steps), in-process: the DNS policy,
        every token with its fixed secret, each agent's agent token."""
        from consulpy.cli.acl import acl_main

        def run(argv: list[str]) -> tuple[int, str]:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = acl_main(argv[1:])
                except SystemExit as exc:
                    status = int(exc.code or 0)
            return status, (err.getvalue().strip() or out.getvalue().strip())

        policy_file = str(configs / topo.DNS_POLICY_FILE)
        steps = topo.acl_setup_steps(writer, self.places(), policy_file)
        for check, action in steps:

            def step(check: list[str] | None = check, action: list[str] = action) -> bool:
                if check is not None and run(check)[0] == 0:
                    return True
                status, text = run(action)
                if status != 0:
                    raise DevClusterError(text)
                return True

            self._wait(f"consulpy {' '.join(action[:3])}", step, deadline)

    def _write_config_entries(
        self, configs: Path, writer: topo.ConfigWriter, deadline: float
    ) -> None:
        from consulpy.cli.connect import config_main

        places = self.places()
        for path in config_entry_files(configs, writer):
            argv = topo.config_write_command(writer, places, str(path))

            def write(argv: list[str] = argv) -> bool:
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    status = config_main(argv[1:])
                if status != 0:
                    raise DevClusterError(err.getvalue().strip() or out.getvalue().strip())
                self._say(f"    {out.getvalue().strip()} (consulpy {' '.join(argv)})")
                return True

            self._wait(f"consulpy config write {path.name}", write, deadline)

    def _proxies_registered(self) -> bool:
        for sidecar in self.layout.sidecars:
            url = f"{self.http_url(sidecar.agent)}/v1/agent/service/{sidecar.proxy_id}"
            if _get(url, token=topo.MANAGEMENT_TOKEN)[0] != 200:
                return False
        return True

    def app_url(self, app_name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[app_name]['port']}"

    def admin_url(self, sidecar_name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[sidecar_name]['admin']}"

    def metrics_url(self, sidecar_name: str) -> str:
        """The sidecar's Envoy Prometheus endpoint (envoy_prometheus_bind_addr)."""
        return f"http://{LOOPBACK}:{self.ports[sidecar_name]['metrics']}/metrics"

    def _apps_healthy(self) -> bool:
        return all(_get(self.app_url(a.name) + "/health")[0] == 200 for a in self.layout.apps)

    def _sidecars_ready(self) -> bool:
        return all(
            _get(self.admin_url(s.name) + "/ready")[0] == 200
            for s in (*self.layout.sidecars, *self.layout.gateways)
        )

    def _mesh_works(self) -> bool:
        for app in self.layout.apps:
            if app.upstreams and _get(self.app_url(app.name) + "/", timeout=6)[0] != 200:
                return False
        return True

    # -------------------------------------------------------------- reporting
    def listens(self, component: Component) -> str:
        ports = self.ports.get(component.name, {})
        if not ports:
            return ""
        if isinstance(component, topo.Agent):
            parts = [f"HTTP {LOOPBACK}:{ports['http']}"]
            if "grpc" in ports:
                parts.append(f"gRPC {LOOPBACK}:{ports['grpc']}")
            if component.server:
                parts.append(f"RPC {LOOPBACK}:{ports['server']}")
            parts.append(f"gossip {LOOPBACK}:{ports['serf_lan']}")
            return ", ".join(parts)
        if isinstance(component, topo.App):
            text = self.app_url(component.name)
            for service, _ in component.upstreams:
                text += f" (calls {service} via 127.0.0.1:{ports[f'upstream:{service}']})"
            return text
        if isinstance(component, topo.Gateway):
            return f"{LOOPBACK}:{ports['port']}, admin {self.admin_url(component.name)}"
        return (
            f"public {LOOPBACK}:{ports['public']}, admin {self.admin_url(component.name)}, "
            f"metrics {self.metrics_url(component.name)}"
        )

    def process_rows(self) -> list[list[str]]:
        rows = [["NAME", "KIND", "PID", "STATE", "LISTENS ON"]]
        for component in self.layout.components():
            record = self.state["processes"].get(component.name) or {}
            pid = record.get("pid")
            state = "running" if self.running(component.name) else "stopped"
            if pid and state == "stopped":
                state = "exited"
            rows.append(
                [component.name, component.kind, str(pid or "-"), state, self.listens(component)]
            )
        return rows

    def env(self) -> dict[str, str]:
        """Shell variables that point the walkthrough's commands at this cluster."""
        user_agent = next(
            a for a in topo.AGENTS if any(p.endswith(f":{topo.HTTP_PORT}") for p in a.publish)
        )
        dc2_clients = [a for a in self.layout.agents_in(topo.DC2) if not a.server]
        out = {
            "CONSUL_HTTP_ADDR": f"{LOOPBACK}:{self.ports[user_agent.name]['http']}",
            # The dev-only management token (configs/acl.hcl): ACLs are on, default deny.
            "CONSUL_HTTP_TOKEN": topo.MANAGEMENT_TOKEN,
        }
        if dc2_clients:  # CONSUL_HTTP_ADDR=$DC2_HTTP_ADDR consulpy members: dc2's view
            out["DC2_HTTP_ADDR"] = f"{LOOPBACK}:{self.ports[dc2_clients[0].name]['http']}"
        for app in self.layout.apps:
            if app.public:
                out[f"{app.name.upper()}_URL"] = self.app_url(app.name)
        for sidecar in self.layout.sidecars:
            prefix = sidecar.name.upper().replace("-", "_")
            out[f"{prefix}_ADMIN"] = self.admin_url(sidecar.name)
            out[f"{prefix}_METRICS"] = self.metrics_url(sidecar.name)
        for gateway in self.layout.gateways:
            out[f"{gateway.name.upper().replace('-', '_')}_ADMIN"] = self.admin_url(gateway.name)
        return out

    def print_summary(self) -> None:
        from consulpy.cli.client import table

        self._say("")
        self._say(table(self.process_rows()))
        self._say("")
        self._say('Point your shell at it (`eval "$(consulpy dev-cluster env)"` does this):')
        for key, value in self.env().items():
            self._say(f"    export {key}={value}")
        env = self.env()
        self._say("Then try:")
        self._say("    consulpy members")
        if "WEB_URL" in env:
            self._say(f"    curl {env['WEB_URL']}/        # web -> api through the sidecars")
        if "DC2_HTTP_ADDR" in env:
            self._say("    consulpy catalog datacenters     # dc1 and dc2")
            self._say("    consulpy catalog services -datacenter=dc2")
            self._say(
                "    consulpy dev-cluster kill api    # then curl $WEB_URL/ again: api-dc2 answers"
            )
        if "CONSUL_HTTP_ADDR" in env:
            self._say(
                f"    open http://{env['CONSUL_HTTP_ADDR']}/ui/  # the web UI (log in: token)"
            )
        self._say(f"Logs: {self.data_dir / 'logs'}/<name>.log")
        flag = (
            f" -data-dir={self.data_dir}"
            if self.data_dir != Path(DEFAULT_DATA_DIR).resolve()
            else ""
        )
        self._say(f"Stop it: consulpy dev-cluster down{flag}")

    def status(self) -> bool:
        """Print processes, members and leader; True when all run and there is a leader."""
        from consulpy.cli.client import table

        if not self.exists:
            self._say(
                f"No dev cluster in {self.data_dir} (start one with `consulpy dev-cluster up`)."
            )
            return False
        rows = self.process_rows()
        self._say(table(rows))
        all_running = all(row[3] == "running" for row in rows[1:])
        self._say("")
        leaders = True
        for dc in self.layout.datacenters:
            live_dc = self._live_agents(dc)
            leader = self.leader_name(live_dc, datacenter=dc) if live_dc else None
            leaders = leaders and leader is not None
            prefix = "Leader" if len(self.layout.datacenters) == 1 else f"Leader of {dc}"
            self._say(f"{prefix}: {leader or '(none agreed on by the running agents)'}")
        live = self._live_agents(topo.DATACENTER)
        view = next((a for a in live if self.members(a.name) is not None), None)
        if view is not None:
            members = (
                _get_json(
                    self.http_url(view.name) + "/v1/agent/members", token=topo.MANAGEMENT_TOKEN
                )
                or []
            )
            statuses = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}
            member_rows = [["Node", "Address", "Status", "Type"]]
            for m in sorted(members, key=lambda m: m.get("Name", "")):
                member_rows.append(
                    [
                        m.get("Name", ""),
                        f"{m.get('Addr', '')}:{m.get('Port', '')}",
                        statuses.get(m.get("Status"), str(m.get("Status"))),
                        "server" if (m.get("Tags") or {}).get("role") == "consul" else "client",
                    ]
                )
            self._say(f"Members (as {view.name} sees them):")
            self._say(table(member_rows))
        return all_running and leaders

    # ------------------------------------------------------------------- down
    def _kind(self, name: str) -> str:
        for component in self.layout.components():
            if component.name == name:
                return component.kind
        raise KeyError(name)

    def _select(self, names: Iterable[str]) -> list[str]:
        known = self.layout.names()
        chosen = list(names) or known
        unknown = [n for n in chosen if n not in known]
        if unknown:
            raise DevClusterError(
                f"unknown name(s): {', '.join(unknown)} (known: {', '.join(known)})"
            )
        return chosen

    def down(self, names: Iterable[str] = (), timeout: float = 20.0, purge: bool = False) -> None:
        if not self.exists:
            self._say(f"No dev cluster in {self.data_dir}.")
            return
        names = list(names)
        chosen = self._select(names)
        # In phases, as dependencies go: sidecars and apps, then clients (which leave the
        # cluster while the servers are still there to hear it), then servers.
        running: list[str] = []
        left: list[procs.Tracked] = []
        deadline = time.monotonic() + timeout
        for kinds in (("sidecar", "gateway", "app"), ("client",), ("server",)):
            phase = [
                t
                for n in chosen
                if self._kind(n) in kinds and (t := self.tracked(n)) is not None and t.leftovers()
            ]
            running += [t.name for t in phase]
            killed, stuck = procs.stop(phase, max(deadline - time.monotonic(), 1.0))
            for t in killed:
                self._say(f"{t.name} did not stop within {timeout:g}s of SIGTERM: sent SIGKILL")
            left += stuck
        if left:
            raise DevClusterError(
                "still running after SIGKILL: " + ", ".join(f"{t.name} (pid {t.pid})" for t in left)
            )
        for name in chosen:
            record = self.state["processes"].get(name)
            if record:
                record["pid"] = None
                record["started"] = None
        self._save()
        self._say(
            f"Stopped {len(running)} process(es){': ' + ', '.join(running) if running else ''}."
        )
        if purge and not names:
            shutil.rmtree(self.data_dir)
            self._say(f"Removed {self.data_dir}.")

    def kill(self, names: Iterable[str], sig: int) -> None:
        chosen = self._select(names)
        for name in chosen:
            tracked = self.tracked(name)
            if tracked is None or not tracked.running():
                self._say(f"{name}: not running")
                continue
            tracked.signal(sig)
            self._say(f"{name}: sent signal {sig} to process group {tracked.pid}")
