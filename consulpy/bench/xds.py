"""`consulpy bench xds`: how fast a change in the catalog reaches a real Envoy.

Topology: a consulpy dev agent (its own process), an `api` backend (a thread here), and two
Envoy sidecars started as users start them (`consulpy connect envoy -sidecar-for`): web's
sidecar has `api` as an upstream on a local port; api is spoken to over http (a service-defaults
entry from `config_entries.bootstrap`), so intentions are enforced per request.

Each repeat measures, from the moment the HTTP API acknowledged the change:

* endpoint-add: a new healthy `api` proxy instance is registered -> it is a healthy host of
  web's api cluster in Envoy's admin ``/clusters``;
* endpoint-remove: it is deregistered -> gone from ``/clusters``;
* deny-config: a `web -> api` deny intention is written -> api's Envoy ``/config_dump``
  shows a rule naming web;
* deny-enforced: the same change -> a real request through web's sidecar gets 403;
* allow-enforced: the intention is deleted -> requests succeed again.

Polling runs every ``--poll`` seconds (default 2 ms), so figures carry that much resolution.
The p50 and p99 of each over ``--repeats`` are printed. There is no reference Envoy control
plane on this machine to compare with; the figures stand alone (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from consulpy.bench.procs import Proc, free_ports, http_json, spawn, wait_until

STEPS = ("endpoint-add", "endpoint-remove", "deny-config", "deny-enforced", "allow-enforced")


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"service": "api"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _until(condition: Callable[[], bool], poll: float, timeout: float, what: str) -> float:
    """Seconds until ``condition`` holds, polled every ``poll`` seconds."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what} not seen within {timeout:.0f}s")
        time.sleep(poll)
    return time.perf_counter() - start


class Mesh:
    """The processes of one benchmark run; ``stop()`` ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.backend = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        threading.Thread(target=self.backend.serve_forever, daemon=True).start()
        (
            self.http_port,
            self.grpc_port,
            self.server_port,
            self.lan_port,
            self.api_public,
            self.web_public,
            self.upstream,
            self.api_admin,
            self.web_admin,
        ) = free_ports(9)
        self.api = f"http://127.0.0.1:{self.http_port}"

    def _write_config(self) -> Path:
        config = self.workdir / "config"
        config.mkdir()
        backend_port = self.backend.server_address[1]

        def service(name: str, port: int, public: int, upstreams: list[dict]) -> dict:
            return {
                "service": {
                    "name": name,
                    "port": port,
                    "connect": {
                        "sidecar_service": {
                            "port": public,
                            "checks": [{"tcp": f"127.0.0.1:{public}", "interval": "1s"}],
                            "proxy": {"upstreams": upstreams},
                        }
                    },
                }
            }

        upstream = [{"destination_name": "api", "local_bind_port": self.upstream}]
        files = {
            "api.json": service("api", backend_port, self.api_public, []),
            "web.json": service("web", 1, self.web_public, upstream),
            "entries.json": {
                "config_entries": {
                    "bootstrap": [{"kind": "service-defaults", "name": "api", "protocol": "http"}]
                }
            },
        }
        for name, doc in files.items():
            (config / name).write_text(json.dumps(doc))
        return config

    def start(self) -> None:
        config = self._write_config()
        agent = spawn(
            "agent",
            [
                sys.executable,
                "-m",
                "consulpy",
                "agent",
                "-dev",
                "-node=bench-xds",
                "-log-level=warn",
                f"-http-port={self.http_port}",
                f"-grpc-port={self.grpc_port}",
                f"-server-port={self.server_port}",
                f"-serf-lan-port={self.lan_port}",
                "-serf-wan-port=-1",
                "-dns-port=-1",
                f"-config-dir={config}",
            ],
            self.workdir / "agent.log",
        )
        self.procs.append(agent)

        def roots_ready() -> bool:
            status, body = http_json(f"{self.api}/v1/connect/ca/roots")
            return status == 200 and bool(isinstance(body, dict) and body.get("Roots"))

        wait_until(roots_ready, 60, "the agent's CA", [agent])
        for sid, admin in (("api", self.api_admin), ("web", self.web_admin)):
            envoy = spawn(
                f"envoy-{sid}",
                [
                    sys.executable,
                    "-m",
                    "consulpy",
                    "connect",
                    "envoy",
                    "-sidecar-for",
                    sid,
                    "-http-addr",
                    f"127.0.0.1:{self.http_port}",
                    "-admin-bind",
                    f"127.0.0.1:{admin}",
                    "--",
                    "--concurrency",
                    "1",
                    "--log-level",
                    "warning",
                ],
                self.workdir / f"envoy-{sid}.log",
            )
            self.procs.append(envoy)
        wait_until(lambda: self.call() == 200, 60, "web -> api through Envoy", self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.backend.shutdown()

    # -- observations ----------------------------------------------------------------------

    def call(self) -> int:
        return _get(f"http://127.0.0.1:{self.upstream}/", timeout=2.0)[0]

    def healthy_api_ports(self) -> set[int]:
        status, raw = _get(f"http://127.0.0.1:{self.web_admin}/clusters?format=json")
        if status != 200:
            return set()
        ports: set[int] = set()
        for cluster in json.loads(raw).get("cluster_statuses", []):
            if not cluster["name"].startswith("api."):
                continue
            for host in cluster.get("host_statuses", []):
                if host.get("health_status", {}).get("eds_health_status", "HEALTHY") == "HEALTHY":
                    ports.add(host["address"]["socket_address"]["port_value"])
        return ports

    def api_rules_name_web(self) -> bool:
        url = f"http://127.0.0.1:{self.api_admin}/config_dump?resource=dynamic_listeners"
        status, raw = _get(url)
        return status == 200 and b"/svc/web" in raw

    # -- changes ---------------------------------------------------------------------------

    def put(self, path: str, body: object | None = None, method: str = "PUT") -> None:
        status, reply = http_json(f"{self.api}{path}", body, method=method, timeout=30)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {reply}")


def one_round(mesh: Mesh, i: int, poll: float, timeout: float) -> dict[str, float]:
    (port,) = free_ports(1)
    sid = f"api-extra-{i}"
    out: dict[str, float] = {}
    mesh.put(
        "/v1/agent/service/register",
        {
            "Kind": "connect-proxy",
            "Name": "api-sidecar-proxy",
            "ID": sid,
            "Port": port,
            "Proxy": {"DestinationServiceName": "api", "LocalServicePort": 1},
        },
    )
    out["endpoint-add"] = _until(
        lambda: port in mesh.healthy_api_ports(), poll, timeout, "new endpoint"
    )
    mesh.put(f"/v1/agent/service/deregister/{sid}")
    out["endpoint-remove"] = _until(
        lambda: port not in mesh.healthy_api_ports(), poll, timeout, "endpoint removal"
    )
    intention = "/v1/connect/intentions/exact?source=web&destination=api"
    mesh.put(intention, {"Action": "deny"})
    start = time.perf_counter()
    _until(mesh.api_rules_name_web, poll, timeout, "deny rule in config_dump")
    out["deny-config"] = time.perf_counter() - start
    _until(lambda: mesh.call() == 403, poll, timeout, "403")
    out["deny-enforced"] = time.perf_counter() - start
    mesh.put(intention, method="DELETE")
    out["allow-enforced"] = _until(lambda: mesh.call() == 200, poll, timeout, "200 again")
    return out


def _pct(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="consulpy bench xds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--poll", type=float, default=0.002, help="poll interval (s)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per observation (s)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="consulpy-bench-xds-") as tmp:
        mesh = Mesh(Path(tmp))
        try:
            mesh.start()
            samples: dict[str, list[float]] = {step: [] for step in STEPS}
            for i in range(args.repeats):
                for step, seconds in one_round(mesh, i, args.poll, args.timeout).items():
                    samples[step].append(seconds)
        finally:
            mesh.stop()
    summary = {
        step: {
            "p50_ms": round(statistics.median(xs) * 1000, 1),
            "p99_ms": round(_pct(xs, 0.99) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1),
            "n": len(xs),
        }
        for step, xs in samples.items()
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"xds propagation, Envoy 1.40, {args.repeats} repeats, poll {args.poll * 1000:g} ms")
    print(f"{'change':<18}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step, row in summary.items():
        print(f"{step:<18}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['max_ms']:>10}")
    return 0
