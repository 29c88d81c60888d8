"""The service mesh across network namespaces: web -> web's sidecar -> api's sidecar -> api.

Every agent binds 0.0.0.0 on the default ports in its own namespace, each app and its Envoy
sidecar run in the namespace of the client agent that registers them (as compose runs them in
the agent's network namespace). Web's sidecar can reach api's only at the address api's agent
advertises, which the catalog and the xDS endpoints must carry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.netns.agents import NsAgent, eventually, formed, start_servers
from tests.netns.harness import Host, Network

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
ENVOY_ARGS = ["--", "--disable-hot-restart", "--concurrency", "1", "--drain-time-s", "1"]


def web_status(host: Host) -> int:
    status, _ = host.http("GET", "/", port=8080, timeout=10)
    return status


def test_web_calls_api_through_sidecars_under_intentions(
    net: Network, agents: list[NsAgent], tmp_path: Path
) -> None:
    connect = "-hcl=connect { enabled = true }"
    servers = start_servers(net, tmp_path, agents, [connect])
    eventually(lambda: formed(servers, {f"{a.host.ip}:8300" for a in servers}), what="3 voters")
    join = [f"-retry-join={a.host.ip}" for a in servers]
    started: dict[str, NsAgent] = {}
    for app in ("web", "api"):
        host = net.add_host(f"{app}-host")
        agent = NsAgent(
            net,
            host,
            tmp_path,
            [
                f"-config-file={CONFIGS / 'client.hcl'}",
                f"-config-file={CONFIGS / 'services' / f'{app}.hcl'}",
                *join,
            ],
            grpc=True,
        )
        agents.append(agent)
        started[app] = agent.start()
    web, api = started["web"].host, started["api"].host
    py = [sys.executable, "-m", "consulpy"]
    net.spawn(
        api, [*py, "demo", "api", "--bind=127.0.0.1", "--port=9090"], str(tmp_path / "api.log")
    )
    net.spawn(
        web,
        [*py, "demo", "web", "--bind=127.0.0.1", "--port=8080", "--upstream=http://127.0.0.1:9191"],
        str(tmp_path / "web.log"),
    )
    for app, host in (("api", api), ("web", web)):
        argv = [
            *py, "connect", "envoy", "-sidecar-for", app, "-grpc-addr", "127.0.0.1:8502",
            "-http-addr", "127.0.0.1:8500", "-admin-bind", "127.0.0.1:19000", *ENVOY_ARGS,
        ]  # fmt: skip
        net.spawn(host, argv, str(tmp_path / f"{app}-sidecar.log"))

    # The catalog and web's Envoy know api's sidecar at the address api's agent advertises.
    def api_endpoint() -> list[tuple[str, int]]:
        rows = web.json("GET", "/v1/health/connect/api?passing")
        return [
            (r["Service"]["Address"] or r["Node"]["Address"], r["Service"]["Port"]) for r in rows
        ]

    endpoints = eventually(api_endpoint, timeout=90, what="api's sidecar in the catalog")
    assert [ip for ip, _ in endpoints] == [api.ip]

    def web_envoy_has_api_endpoint() -> bool:
        status, raw = web.http("GET", "/clusters?format=json", port=19000)
        if status != 200:
            return False
        hosts = [
            h["address"]["socket_address"]
            for c in json.loads(raw).get("cluster_statuses", [])
            if c["name"].startswith("api.")
            for h in c.get("host_statuses", [])
        ]
        return any(a.get("address") == api.ip for a in hosts)

    eventually(web_envoy_has_api_endpoint, timeout=90, what="web's Envoy has api's endpoint")

    def logs() -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log"))
        )

    try:
        eventually(lambda: web_status(web) == 200, timeout=90, what="web -> api answers 200")
        deny = web.http(
            "PUT", "/v1/connect/intentions/exact?source=web&destination=api", {"Action": "deny"}
        )
        assert deny[0] == 200, deny
        eventually(lambda: web_status(web) == 502, what="a denied call answers 502")
        allow = web.http(
            "PUT", "/v1/connect/intentions/exact?source=web&destination=api", {"Action": "allow"}
        )
        assert allow[0] == 200, allow
        eventually(lambda: web_status(web) == 200, what="allowed again")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs()}") from None
