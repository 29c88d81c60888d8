"""configs/observability/ put to work on the docker-free twin: the checked-in Prometheus config
with its compose host names turned into the twin's loopback ports, a real Debian `prometheus`
scraping with it, and the metric names the Grafana dashboard queries."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from consulpy.devcluster import topology as topo
from consulpy.util.ports import free_port
from tests.cluster.harness import eventually

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PROMETHEUS_YML = CONFIGS / "observability" / "prometheus.yml"
DASHBOARD = CONFIGS / "observability" / "grafana" / "dashboards" / "consulpy.json"

AGENTS_JOB, SIDECARS_JOB = "consulpy-agents", "envoy-sidecars"
SCRAPE_INTERVAL = "1s"  # the checked-in 10s would make the test wait for nothing


def twin_config(ports: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The checked-in config, unchanged but for the scrape interval and the targets: an
    agent `<name>:8500` becomes `127.0.0.1:<its HTTP port>`, a sidecar target
    `<agent>:20200` becomes the Prometheus listener of the sidecar next to that agent."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"]["scrape_interval"] = SCRAPE_INTERVAL
    sidecar_of = {s.agent: s.name for s in topo.SIDECARS}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {AGENTS_JOB, SIDECARS_JOB}, sorted(jobs)
    for name, job in jobs.items():
        for group in job["static_configs"]:
            targets = []
            for target in group["targets"]:
                host = target.rsplit(":", 1)[0]
                if name == AGENTS_JOB:
                    targets.append(f"127.0.0.1:{ports[host]['http']}")
                else:
                    targets.append(f"127.0.0.1:{ports[sidecar_of[host]]['metrics']}")
            group["targets"] = targets
    return config


def promtool_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Prometheus:
    """A real `prometheus` process on a loopback port, with its TSDB under `data`."""

    config: Path
    data: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3) -> Prometheus:
        """Start it and wait until its API answers; a port taken meanwhile by another
        process (it exits with "address already in use") is retried on a new port."""
        for _ in range(attempts):
            self.port = free_port()
            self.log = (self.data / "prometheus.log").open("wb")
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.data / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            proc = self.proc
            answered = eventually(
                lambda proc=proc: proc.poll() is not None or self.api("status/buildinfo"),
                timeout=60,
                what="prometheus answers or exits",
            )
            if answered and proc.poll() is None:
                return self
            self.log.close()
            if "address already in use" not in self.output():
                break
        raise AssertionError(f"prometheus did not start:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def output(self) -> str:
        return (self.data / "prometheus.log").read_text(errors="replace")[-3000:]

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a Prometheus HTTP API answer; None while it cannot answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/api/v1/{path}{query}", timeout=10
            ) as resp:
                body = json.loads(resp.read())
        except OSError:
            return None
        return body.get("data") if body.get("status") == "success" else None

    def targets(self) -> list[dict[str, Any]]:
        data = self.api("targets")
        return list(data["activeTargets"]) if data else []

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return list(data["result"]) if data else []


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the Grafana dashboard's panels."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(DASHBOARD.read_text()))
    return found


_NAME = re.compile(r"\b((?:consul|envoy)_[A-Za-z0-9_:]+)\b")
_NAME_MATCHER = re.compile(r'__name__\s*=~\s*"([^"]+)"')
_SELECTOR = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without)\s*\([^)]*\)")


def dashboard_metrics() -> tuple[set[str], set[str]]:
    """The metric names the dashboard queries, and the `__name__=~` patterns it selects
    with (each must match some exposed name)."""
    names: set[str] = set()
    patterns: set[str] = set()
    for expr in dashboard_exprs():
        patterns.update(_NAME_MATCHER.findall(expr))
        # What is left once the label matchers (`{...}`) and groupings (`by (...)`) are
        # dropped names metrics: `envoy_cluster_name` in `by (...)` is a label.
        bare = _GROUPING.sub("", _SELECTOR.sub("", expr))
        names.update(_NAME.findall(bare))
    return names, patterns
