"""A pytest plugin that runs py-consul's own non-ACL tests (from its sdist) against consulpy.

It provides the fixtures of py-consul's two conftest files (`consul_instance`, `consul_port`,
`consul_obj`, `acl_consul_instance`, `acl_consul`), each backed by a fresh `consulpy agent
-dev` process per test, started with the settings py-consul's authors give their Consul
container (`agent -dev -client=0.0.0.0 -log-level trace` with script checks on, HTTPS, DNS
and gRPC-TLS off, raft_multiplier 1; ACLs on with an initial management token for the ACL
fixtures) and the same readiness checks (a leader, then a registered service visible in
health).

Their HTTP-check tests probe http://127.0.0.1:8500 and http://localhost:8500, which inside
their container is Consul itself. The outer test (test_pyconsul_upstream.py) runs this pytest
in a private network namespace (`unshare -n`, loopback up), so the agent takes the default
ports, 8500 included, as in the container, without meeting anything else on the machine.
Loaded with `--noconftest -p pyconsul_dev_fixtures` from the sdist's root.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul
import pytest

HTTP_PORT = 8500
BASE_CONFIG: dict[str, Any] = {
    "ports": {"https": -1, "dns": -1, "grpc_tls": -1},
    "performance": {"raft_multiplier": 1},
    "enable_script_checks": True,
}
READY_TIMEOUT = 60.0  # the fixture's startup limit (the machine may be busy)
POLL = 0.1

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])
ACLConsul = collections.namedtuple("ACLConsul", ["instance", "token", "version"])


def _get(path: str, token: str = "") -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}")
    if token:
        req.add_header("X-Consul-Token", token)
    with urllib.request.urlopen(req, timeout=2) as resp:
        return json.loads(resp.read() or b"null")


def _ready(token: str) -> bool:
    if not _get("/v1/status/leader"):
        return False
    if token and _get("/v1/acl/token/self", token).get("SecretID") != token:
        return False  # the leader writes the management token just after it is elected
    client = consul.Consul(port=HTTP_PORT, token=token or None)
    client.agent.service.register("test-service")
    if not client.health.service("test-service")[1]:
        return False
    client.agent.service.deregister("test-service")
    return True


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, token: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"consulpy agent exited: {log.read_text()[-3000:]}")
        try:
            if _ready(token):
                return
        except (OSError, consul.ConsulException, ValueError, AttributeError):
            pass
        time.sleep(POLL)  # poll interval of the readiness loop
    raise TimeoutError(f"consulpy agent not ready: {log.read_text()[-3000:]}")


def _agent(acl_token: str = "") -> Iterator[ConsulInstance]:
    """A dev agent on 127.0.0.1:8500 for one test; its log is printed at teardown (pytest
    shows it for a failing test)."""
    config = dict(BASE_CONFIG)
    if acl_token:
        config["primary_datacenter"] = "dc1"
        config["acl"] = {"enabled": True, "tokens": {"initial_management": acl_token}}
    with tempfile.TemporaryDirectory(prefix="pyconsul-dev-") as tmp:
        cfg = Path(tmp) / "local.json"
        cfg.write_text(json.dumps(config))
        log = Path(tmp) / "agent.log"
        argv = [sys.executable, "-m", "consulpy", "agent", "-dev", "-client=127.0.0.1"]
        argv += ["-log-level", "trace", f"-config-file={cfg}"]
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(proc, log, acl_token)
            version = _get("/v1/agent/self", acl_token)["Config"]["Version"].strip()
            yield ConsulInstance(proc, HTTP_PORT, version)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            sys.stdout.write(log.read_text(errors="replace")[-5000:])


@pytest.fixture
def consul_instance() -> Iterator[ConsulInstance]:
    yield from _agent()


@pytest.fixture
def acl_consul_instance() -> Iterator[tuple[ConsulInstance, str]]:
    token = uuid.uuid4().hex
    for instance in _agent(acl_token=token):
        yield instance, token


@pytest.fixture
def consul_port(consul_instance: ConsulInstance) -> tuple[int, str]:
    return consul_instance.port, consul_instance.version


@pytest.fixture
def consul_obj(consul_port: tuple[int, str]) -> tuple[consul.Consul, str]:
    port, version = consul_port
    return consul.Consul(port=port), version


@pytest.fixture
def acl_consul(acl_consul_instance: tuple[ConsulInstance, str]) -> ACLConsul:
    instance, token = acl_consul_instance
    return ACLConsul(consul.Consul(port=instance.port), token, instance.version)
