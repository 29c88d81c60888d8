"""The dev cluster, described once.

docker-compose.yml and the docker-free twin (`consulpy dev-cluster up`) run this topology:
three servers, two client agents, the `api` and `web` demo services, each next to a client
agent and with an Envoy sidecar, and a one-shot that writes the config entries of
`configs/intentions/`. Every process is a `consulpy` command built here from the same
`configs/` files; only addresses, ports and paths differ between the two, and they come from
a `Places`:

* in compose (`ComposePlaces`) every agent is a container named after it, listening on
  Consul's default ports, with `configs/` mounted at /consul/config; an app and its sidecar
  share their agent's network namespace (`network_mode: service:<agent>`), so they reach it,
  and each other, on 127.0.0.1, exactly as processes on one host do;
* in the twin (`consulpy.devcluster.cluster`) everything is a process on 127.0.0.1 with ports
  chosen by the OS, and the agents get extra flags (data directory, 127.0.0.1, ports).

With a second datacenter (compose profile `dc2`, `consulpy dev-cluster up -dc2`), `TWO_DCS`
adds dc2: one server WAN-joined to dc1's, a client agent with a second `api` and its sidecar,
a mesh gateway in each datacenter, and a one-shot that creates dc2's tokens and writes the
config entries of `configs/dc2/config-entries/` (mesh gateway mode local, api failing over
to dc2) in dc1, the primary, from where they replicate.

tests/devcluster/test_compose.py renders this topology with `ComposePlaces` and checks that
docker-compose.yml runs exactly those commands, so the two cannot drift apart.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

CONFIG_MOUNT = "/consul/config"
"""Where docker-compose.yml mounts ./configs (read-only) in every container."""

DATA_MOUNT = "/consul/data"
"""The agents' data_dir in containers (set in configs/server.hcl and configs/client.hcl)."""

# Consul's default ports, which the containers use.
HTTP_PORT = 8500
GRPC_PORT = 8502
ENVOY_ADMIN_PORT = 19000
ENVOY_PROMETHEUS_PORT = 20200
"""Where each sidecar's Envoy serves its Prometheus stats (`envoy_prometheus_bind_addr` in
configs/services/*.hcl): /metrics, nothing else of the admin API."""

OBSERVABILITY = ("prometheus", "grafana")
"""Compose-only services (profile `observability`): Prometheus scraping every agent's
/v1/agent/metrics and every sidecar's Envoy stats, and Grafana with a provisioned dashboard,
configured from configs/observability/. The twin runs no Prometheus: it prints the scrape
URLs instead."""

# ACL tokens of the dev cluster. FIXED, PUBLIC, DEV-ONLY VALUES: anyone who reads this file holds
# them. They are fixed so that compose's containers and the twin's processes can name them in
# their commands and configs/ files before the cluster exists; the config job creates the
# tokens with these secrets. A real cluster runs `consulpy acl bootstrap` and keeps the secrets
# out of version control (docs/acl.md).
MANAGEMENT_TOKEN = "dddddddd-0000-4000-8000-00000000a001"
"""acl.tokens.initial_management in configs/acl.hcl: the leader creates it (global-management)."""

DNS_TOKEN = "dddddddd-0000-4000-8000-00000000a002"
"""acl.tokens.default in configs/acl.hcl: what anonymous HTTP and DNS callers act as; policy
`dns-read` (configs/acl/dns-read.hcl): read every service and node, nothing else."""

DNS_POLICY = "dns-read"
DNS_POLICY_FILE = "acl/dns-read.hcl"

AGENT_TOKENS = {
    "consul-server-1": "dddddddd-0000-4000-8000-00000000b001",
    "consul-server-2": "dddddddd-0000-4000-8000-00000000b002",
    "consul-server-3": "dddddddd-0000-4000-8000-00000000b003",
    "consul-client-1": "dddddddd-0000-4000-8000-00000000b004",
    "consul-client-2": "dddddddd-0000-4000-8000-00000000b005",
    "consul-dc2-server": "dddddddd-0000-4000-8000-00000000b006",
    "consul-dc2-client": "dddddddd-0000-4000-8000-00000000b007",
}
"""Each agent's agent token: a node identity for its own node (register itself, read the
catalog), and on a client a service identity for each app it hosts. The config job sets it
with `consulpy acl set-agent-token` (persisted by enable_token_persistence)."""

SERVICE_TOKENS = {
    "api": "dddddddd-0000-4000-8000-00000000c001",
    "web": "dddddddd-0000-4000-8000-00000000c002",
}
"""Each demo service's token: a service identity. Its service definition registers with it
(`token`) and its sidecar runs `connect envoy -token` with it."""

DATACENTER = "dc1"
"""The primary datacenter: its servers hold the CA, config entries and ACL objects."""

DC2 = "dc2"
"""The second datacenter (compose profile `dc2`, `dev-cluster up -dc2`), a secondary."""

GATEWAY_TOKEN = "dddddddd-0000-4000-8000-00000000c003"
"""The mesh gateways' token: a service identity for `mesh-gateway` (write on it, read on every
service and node, which the gateway needs to route to every datacenter). A global token, so
dc2 has it too (token replication)."""

MESH_GATEWAY_SERVICE = "mesh-gateway"

ENVOY_ARGS: tuple[str, ...] = (
    "--disable-hot-restart",
    "--concurrency",
    "1",
    "--drain-time-s",
    "1",
)
"""Extra Envoy arguments (after `--`). Hot restart is off so that several Envoys can run on
one host; one worker thread is plenty for a demo. A changed intention changes the RBAC rules
of the destination's public listener, and Envoy lets connections opened on the old listener
go on under the old rules while it drains them, for up to `--drain-time-s` (600 s by
default): pooled connections from other sidecars could keep a just-denied caller allowed for
minutes. One second bounds that, whatever drain strategy the launcher picks."""


@dataclass(frozen=True)
class Agent:
    """A `consulpy agent`: a server, or a client that hosts apps and their sidecars."""

    name: str  # node name, compose service and container host name
    server: bool
    config_files: tuple[str, ...]  # relative to configs/, loaded in this order
    retry_join: tuple[str, ...]  # agents to join (never itself: see SERVERS)
    publish: tuple[str, ...] = ()  # compose `ports:` (host:container) of this network namespace
    datacenter: str = DATACENTER  # must match `datacenter` in its config files
    retry_join_wan: tuple[str, ...] = ()  # servers to join in the WAN pool (servers only)

    @property
    def kind(self) -> str:
        return "server" if self.server else "client"


@dataclass(frozen=True)
class App:
    """A demo service (`consulpy demo <service>`), registered by its agent from `service_file`."""

    name: str  # compose service (and, unless `service` says otherwise, the service name and ID)
    agent: str
    port: int  # in compose and in the service definition
    service_file: str  # relative to configs/
    upstreams: tuple[tuple[str, int], ...] = ()  # (service, local bind port of its sidecar)
    public: bool = False  # compose publishes it, so it listens on all interfaces there
    service_name: str = ""  # the service it is an instance of, when not `name`
    instance: str = ""  # `--instance`: the name its answers carry (default host:port)

    kind = "app"

    @property
    def service(self) -> str:
        return self.service_name or self.name


@dataclass(frozen=True)
class Sidecar:
    """The Envoy sidecar of an app, started by `consulpy connect envoy -sidecar-for`."""

    name: str  # compose service
    service_id: str
    agent: str

    kind = "sidecar"

    @property
    def proxy_id(self) -> str:
        return f"{self.service_id}-sidecar-proxy"


@dataclass(frozen=True)
class Gateway:
    """A mesh gateway next to a client agent: `consulpy connect envoy -gateway=mesh -register`
    (Consul's default port, 8443, in compose)."""

    name: str  # compose service
    agent: str

    kind = "gateway"
    service = MESH_GATEWAY_SERVICE


@dataclass(frozen=True)
class ConfigWriter:
    """Creates the tokens of `datacenter`'s agents (acl_setup_steps) and writes every
    `pattern` file of `directory` with `consulpy config write`, once the cluster has a leader
    (compose: a one-shot container; the twin: `dev-cluster up`). Both go through `agent`, in
    the primary datacenter: config entries and tokens are written there and replicate."""

    name: str  # compose service
    agent: str  # the agent whose HTTP API it writes through
    directory: str  # relative to configs/
    pattern: str = "*.hcl"
    datacenter: str = DATACENTER  # whose agents' tokens it creates and sets


SERVER_NAMES = ("consul-server-1", "consul-server-2", "consul-server-3")

# Each server joins the other two, never itself: a server that could join only itself would
# count that as success and stop retrying, and three servers starting at the same instant
# could then stay three one-node clusters. Each one retrying the others until one answers
# always ends in a single cluster. The same goes for the WAN pool: servers also flood-join
# their LAN peers into it (as Consul's do), but joining the others directly forms the pool
# before the first LAN event; another datacenter joining any one reaches all.
SERVERS = tuple(
    Agent(
        name,
        server=True,
        config_files=("server.hcl", "encrypt.hcl", "acl.hcl"),
        retry_join=tuple(other for other in SERVER_NAMES if other != name),
        retry_join_wan=tuple(other for other in SERVER_NAMES if other != name),
    )
    for name in SERVER_NAMES
)

CLIENTS = (
    Agent(
        "consul-client-1",
        server=False,
        config_files=("client.hcl", "encrypt.hcl", "acl.hcl", "services/web.hcl"),
        retry_join=SERVER_NAMES,
        # The HTTP API, web, and web's sidecar's Envoy admin page.
        publish=(f"{HTTP_PORT}:{HTTP_PORT}", "8080:8080", f"19000:{ENVOY_ADMIN_PORT}"),
    ),
    Agent(
        "consul-client-2",
        server=False,
        config_files=("client.hcl", "encrypt.hcl", "acl.hcl", "services/api.hcl"),
        retry_join=SERVER_NAMES,
        # api's sidecar's Envoy admin page. api itself is reachable through the mesh only.
        publish=(f"19001:{ENVOY_ADMIN_PORT}",),
    ),
)

AGENTS = SERVERS + CLIENTS

APPS = (
    App("api", agent="consul-client-2", port=9090, service_file="services/api.hcl"),
    App(
        "web",
        agent="consul-client-1",
        port=8080,
        service_file="services/web.hcl",
        upstreams=(("api", 9191),),
        public=True,
    ),
)

SIDECARS = (
    Sidecar("api-sidecar", service_id="api", agent="consul-client-2"),
    Sidecar("web-sidecar", service_id="web", agent="consul-client-1"),
)

CONFIG_WRITER = ConfigWriter("consul-config", agent="consul-client-1", directory="intentions")

# ------------------------------------------------------------------ the second datacenter
# One server: the point is the federation (WAN join, replication, gateways, failover), and
# three more servers would cost every start (CI included) a Raft election's worth of
# processes for nothing the demo shows. dc2/server.hcl sets bootstrap_expect = 1.
DC2_SERVERS = (
    Agent(
        "consul-dc2-server",
        server=True,
        config_files=("server.hcl", "encrypt.hcl", "acl.hcl", "dc2/agent.hcl", "dc2/server.hcl"),
        retry_join=(),
        datacenter=DC2,
        retry_join_wan=SERVER_NAMES,
    ),
)

DC2_CLIENTS = (
    Agent(
        "consul-dc2-client",
        server=False,
        config_files=("client.hcl", "encrypt.hcl", "acl.hcl", "dc2/agent.hcl", "services/api.hcl"),
        retry_join=tuple(a.name for a in DC2_SERVERS),
        datacenter=DC2,
    ),
)

DC2_AGENTS = DC2_SERVERS + DC2_CLIENTS

DC2_APPS = (
    App(
        "api-dc2",
        agent="consul-dc2-client",
        port=9090,
        service_file="services/api.hcl",
        service_name="api",
        instance="api-dc2",
    ),
)

DC2_SIDECARS = (Sidecar("api-dc2-sidecar", service_id="api", agent="consul-dc2-client"),)

# dc1's gateway sits next to api (consul-client-2), dc2's next to dc2's api.
GATEWAYS = (
    Gateway("mesh-gateway-dc1", agent="consul-client-2"),
    Gateway("mesh-gateway-dc2", agent="consul-dc2-client"),
)

DC2_CONFIG_WRITER = ConfigWriter(
    "consul-config-dc2", agent="consul-client-1", directory="dc2/config-entries", datacenter=DC2
)

DC2_PROFILE = "dc2"
"""The compose profile of everything dc2 adds (both gateways included)."""


@dataclass(frozen=True)
class Layout:
    """Which processes a dev cluster runs: one datacenter, or two."""

    agents: tuple[Agent, ...]
    apps: tuple[App, ...]
    sidecars: tuple[Sidecar, ...]
    gateways: tuple[Gateway, ...]
    writers: tuple[ConfigWriter, ...]

    @property
    def datacenters(self) -> list[str]:
        return sorted({a.datacenter for a in self.agents})

    def components(self) -> tuple[Agent | App | Sidecar | Gateway, ...]:
        """Every long-running process, in start order."""
        return (*self.agents, *self.apps, *self.sidecars, *self.gateways)

    def names(self) -> list[str]:
        return [c.name for c in self.components()]

    def agents_in(self, datacenter: str) -> list[Agent]:
        return [a for a in self.agents if a.datacenter == datacenter]

    def servers_in(self, datacenter: str) -> list[Agent]:
        return [a for a in self.agents_in(datacenter) if a.server]


ONE_DC = Layout(AGENTS, APPS, SIDECARS, (), (CONFIG_WRITER,))
TWO_DCS = Layout(
    AGENTS + DC2_AGENTS,
    APPS + DC2_APPS,
    SIDECARS + DC2_SIDECARS,
    GATEWAYS,
    (CONFIG_WRITER, DC2_CONFIG_WRITER),
)


def layout(datacenters: int) -> Layout:
    if datacenters == 1:
        return ONE_DC
    if datacenters == 2:
        return TWO_DCS
    raise ValueError(f"the dev cluster runs 1 or 2 datacenters, not {datacenters}")


def agent_named(name: str) -> Agent:
    for candidate in TWO_DCS.agents:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def app_named(name: str) -> App:
    for candidate in TWO_DCS.apps:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def app_of(sidecar: Sidecar) -> App:
    """The app a sidecar proxies: the instance of its service on its agent."""
    for candidate in TWO_DCS.apps:
        if candidate.agent == sidecar.agent and candidate.service == sidecar.service_id:
            return candidate
    raise KeyError(sidecar.name)


def sidecar_of(app: App) -> Sidecar | None:
    for candidate in TWO_DCS.sidecars:
        if candidate.agent == app.agent and candidate.service_id == app.service:
            return candidate
    return None


def hosted_services(agent: Agent) -> list[str]:
    """The services an agent registers (its apps' and gateways'): its agent token needs
    their identities, since the agent syncs them to the catalog with it."""
    out = [a.service for a in TWO_DCS.apps if a.agent == agent.name]
    out += [g.service for g in TWO_DCS.gateways if g.agent == agent.name]
    return list(dict.fromkeys(out))


def names() -> list[str]:
    """Every long-running process of the one-datacenter cluster, in start order."""
    return ONE_DC.names()


# ----------------------------------------------------------------------- commands
class Places(Protocol):
    """Where things are: the only thing that differs between compose and the twin."""

    def config_file(self, agent: Agent, path: str) -> str:
        """The path an agent loads for configs/<path>."""
        ...

    def join_address(self, agent: Agent) -> str:
        """What others pass to -retry-join to reach `agent`'s gossip port."""
        ...

    def wan_join_address(self, agent: Agent) -> str:
        """What another datacenter's servers pass to -retry-join-wan to reach `agent`."""
        ...

    def http_address(self, agent: Agent, local: bool) -> str:
        """host:port of `agent`'s HTTP API; `local`: seen from its own host."""
        ...

    def grpc_address(self, agent: Agent) -> str:
        """host:port of `agent`'s gRPC (xDS) port, seen from its own host."""
        ...

    def app_bind(self, app: App) -> str: ...

    def app_port(self, app: App) -> int: ...

    def upstream_port(self, app: App, service: str, port: int) -> int:
        """The sidecar's local bind port for an upstream (`port` in the service file)."""
        ...

    def admin_bind(self, sidecar: Sidecar | Gateway) -> str: ...

    def gateway_flags(self, gateway: Gateway) -> list[str]:
        """`-address`/`-wan-address` of a mesh gateway, when the default will not do."""
        ...


def agent_command(agent: Agent, places: Places) -> list[str]:
    """`consulpy agent ...` for one agent (the twin appends its own flags)."""
    return [
        "agent",
        *(f"-config-file={places.config_file(agent, path)}" for path in agent.config_files),
        f"-node={agent.name}",
        *(f"-retry-join={places.join_address(agent_named(n))}" for n in agent.retry_join),
        *(
            f"-retry-join-wan={places.wan_join_address(agent_named(n))}"
            for n in agent.retry_join_wan
        ),
    ]


def app_command(app: App, places: Places) -> list[str]:
    command = [
        "demo",
        app.service,
        f"--bind={places.app_bind(app)}",
        f"--port={places.app_port(app)}",
    ]
    if app.instance:
        command.append(f"--instance={app.instance}")
    for service, port in app.upstreams:
        command.append(f"--upstream=http://127.0.0.1:{places.upstream_port(app, service, port)}")
    return command


def sidecar_command(sidecar: Sidecar, places: Places) -> list[str]:
    """Consul's `connect envoy` flags: find the proxy of `service_id` on the local agent,
    bootstrap Envoy against its gRPC port and exec Envoy."""
    host = agent_named(sidecar.agent)
    return [
        "connect",
        "envoy",
        "-sidecar-for",
        sidecar.service_id,
        "-grpc-addr",
        places.grpc_address(host),
        "-http-addr",
        places.http_address(host, local=True),
        "-admin-bind",
        places.admin_bind(sidecar),
        "-token",
        SERVICE_TOKENS[sidecar.service_id],
        "--",
        *ENVOY_ARGS,
    ]


def gateway_command(gateway: Gateway, places: Places) -> list[str]:
    """A mesh gateway: registered by `-register` on its agent (kind mesh-gateway, a TCP
    check), then Envoy bootstrapped against the agent's gRPC port, as for a sidecar."""
    host = agent_named(gateway.agent)
    return [
        "connect",
        "envoy",
        "-gateway=mesh",
        "-register",
        *places.gateway_flags(gateway),
        "-grpc-addr",
        places.grpc_address(host),
        "-http-addr",
        places.http_address(host, local=True),
        "-admin-bind",
        places.admin_bind(gateway),
        "-token",
        GATEWAY_TOKEN,
        "--",
        *ENVOY_ARGS,
    ]


def config_write_command(writer: ConfigWriter, places: Places, path: str) -> list[str]:
    """`consulpy config write` of one file (a path as the writer sees it)."""
    return [
        "config",
        "write",
        f"-http-addr={places.http_address(agent_named(writer.agent), local=False)}",
        f"-token={MANAGEMENT_TOKEN}",
        path,
    ]


def acl_setup_steps(
    writer: ConfigWriter, places: Places, policy_file: str
) -> list[tuple[list[str] | None, list[str]]]:
    """The ACL bootstrap the config job runs before the config entries, as (check, action)
    pairs of `consulpy` arguments: the action runs unless the check succeeds, so running it
    again (a restart) changes nothing. All with the management token, through `writer.agent`
    except each agent's own set-agent-token."""
    http = f"-http-addr={places.http_address(agent_named(writer.agent), local=False)}"
    auth = f"-token={MANAGEMENT_TOKEN}"
    steps: list[tuple[list[str] | None, list[str]]] = []
    primary = writer.datacenter == DATACENTER
    if primary:
        steps.append(
            (
                ["acl", "policy", "read", http, auth, f"-name={DNS_POLICY}"],
                [
                    "acl",
                    "policy",
                    "create",
                    http,
                    auth,
                    f"-name={DNS_POLICY}",
                    "-description=DNS and anonymous reads of services and nodes",
                    f"-rules=@{policy_file}",
                ],
            )
        )

    def token(secret: str, description: str, *links: str) -> None:
        steps.append(
            (
                ["acl", "token", "read", http, f"-token={secret}", "-self"],
                [
                    "acl",
                    "token",
                    "create",
                    http,
                    auth,
                    f"-secret={secret}",
                    f"-description={description}",
                    *links,
                ],
            )
        )

    agents = TWO_DCS.agents_in(writer.datacenter)
    if primary:
        token(DNS_TOKEN, "dev cluster default (DNS) token", f"-policy-name={DNS_POLICY}")
    for agent in agents:
        token(
            AGENT_TOKENS[agent.name],
            f"agent token of {agent.name}",
            f"-node-identity={agent.name}:{agent.datacenter}",
            # The agent syncs its local services to the catalog with its agent token (the
            # services' own `token` is not used for that yet: docs/compatibility.md).
            *(f"-service-identity={service}" for service in hosted_services(agent)),
        )
    if primary:
        for service, secret in SERVICE_TOKENS.items():
            token(secret, f"service token of {service}", f"-service-identity={service}")
    else:
        # Tokens are global: dc2's agents get them by replication. The gateways' token is
        # made with dc2, the only layout that runs gateways.
        token(
            GATEWAY_TOKEN,
            "token of the mesh gateways",
            f"-service-identity={MESH_GATEWAY_SERVICE}",
        )
    for agent in agents:
        steps.append(
            (
                None,
                [
                    "acl",
                    "set-agent-token",
                    f"-http-addr={places.http_address(agent, local=False)}",
                    auth,
                    "agent",
                    AGENT_TOKENS[agent.name],
                ],
            )
        )
    return steps


def config_writer_script(writer: ConfigWriter = CONFIG_WRITER) -> str:
    """The compose one-shot's `sh -c` script: every file of the directory, in name order
    (the shell's glob order, which is also the twin's)."""
    pattern = str(PurePosixPath(CONFIG_MOUNT) / writer.directory / writer.pattern)
    places = ComposePlaces()
    policy_file = str(PurePosixPath(CONFIG_MOUNT) / DNS_POLICY_FILE)
    lines = []
    for check, action in acl_setup_steps(writer, places, policy_file):
        act = f"consulpy {shlex.join(action)} || exit 1"
        if check is None:
            lines.append(act)
        else:
            lines.append(f"consulpy {shlex.join(check)} >/dev/null 2>&1 || {act}")
    write = " ".join(config_write_command(writer, places, '"$f"'))
    lines.append(f"for f in {pattern}; do consulpy {write} || exit 1; done")
    return "; ".join(lines)


class ComposePlaces:
    """docker-compose.yml: containers named after the topology, Consul's default ports."""

    def config_file(self, agent: Agent, path: str) -> str:
        return str(PurePosixPath(CONFIG_MOUNT) / path)

    def join_address(self, agent: Agent) -> str:
        return agent.name  # resolved by compose's DNS; the default gossip port (8301)

    def wan_join_address(self, agent: Agent) -> str:
        return agent.name  # the default WAN gossip port (8302)

    def http_address(self, agent: Agent, local: bool) -> str:
        return f"127.0.0.1:{HTTP_PORT}" if local else f"{agent.name}:{HTTP_PORT}"

    def grpc_address(self, agent: Agent) -> str:
        return f"127.0.0.1:{GRPC_PORT}"

    def app_bind(self, app: App) -> str:
        return "0.0.0.0" if app.public else "127.0.0.1"

    def app_port(self, app: App) -> int:
        return app.port

    def upstream_port(self, app: App, service: str, port: int) -> int:
        return port

    def admin_bind(self, sidecar: Sidecar | Gateway) -> str:
        # A gateway shares its agent's namespace with a sidecar, whose admin has 19000.
        port = ENVOY_ADMIN_PORT + 1 if isinstance(sidecar, Gateway) else ENVOY_ADMIN_PORT
        return f"0.0.0.0:{port}"

    def gateway_flags(self, gateway: Gateway) -> list[str]:
        # No -address: Envoy listens on 0.0.0.0:8443, and the gateway is reached at its
        # agent's address (the node's address, and its `wan` tagged address for dc2).
        return []
