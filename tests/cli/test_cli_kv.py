"""`consulpy agent -dev` started as a user would, then `consulpy kv ...` against it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.helpers import eventually

DEV_FLAGS = (
    "-dev",
    "-node=cli-test",
    "-http-port=0",
    "-dns-port=-1",
    "-grpc-port=-1",
    "-serf-lan-port=0",
    "-serf-wan-port=0",
    "-server-port=0",
)


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    proc = AgentProcess(*DEV_FLAGS).start()
    try:
        yield proc
    finally:
        proc.kill()


def test_kv_put_get_round_trip(agent: AgentProcess) -> None:
    out = consulpy("kv", "put", f"-http-addr={agent.http_addr}", "app/greeting", "hello world")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Success! Data written to: app/greeting"
    out = consulpy("kv", "get", "app/greeting", env={"CONSUL_HTTP_ADDR": agent.http_addr})
    assert out.returncode == 0 and out.stdout == "hello world\n"
    out = consulpy("kv", "get", "-http-addr", agent.http_addr, "-detailed", "app/greeting")
    assert "Key          app/greeting" in out.stdout and "Session      -" in out.stdout


def test_kv_flags_cas_stdin_and_files(agent: AgentProcess, tmp_path) -> None:
    a = f"-http-addr={agent.http_addr}"
    assert consulpy("kv", "put", a, "-flags=42", "f", "-", stdin="from stdin").returncode == 0
    out = consulpy("kv", "get", a, "-detailed", "f")
    assert "Flags        42" in out.stdout and "Value        from stdin" in out.stdout
    path = tmp_path / "value.bin"
    path.write_bytes(b"from file")
    assert consulpy("kv", "put", a, "file", f"@{path}").returncode == 0
    assert consulpy("kv", "get", a, "file").stdout == "from file\n"
    out = consulpy("kv", "put", a, "-cas", "-modify-index=1", "file", "x")
    assert out.returncode == 1 and "CAS failed" in out.stderr
    out = consulpy("kv", "put", a, "-cas", "brand-new", "x")
    assert out.returncode == 0
    out = consulpy("kv", "put", a, "-base64", "b64", "aGk=")
    assert consulpy("kv", "get", a, "b64").stdout == "hi\n"


def test_kv_recurse_keys_delete_export_import(agent: AgentProcess) -> None:
    a = f"-http-addr={agent.http_addr}"
    for key in ("tree/a", "tree/b/c"):
        assert consulpy("kv", "put", a, key, key.upper()).returncode == 0
    out = consulpy("kv", "get", a, "-recurse", "tree/")
    assert out.stdout.splitlines() == ["tree/a:TREE/A", "tree/b/c:TREE/B/C"]
    out = consulpy("kv", "get", a, "-keys", "tree/")
    assert out.stdout.splitlines() == ["tree/a", "tree/b/"]
    exported = consulpy("kv", "export", a, "tree/")
    data = json.loads(exported.stdout)
    assert [e["key"] for e in data] == ["tree/a", "tree/b/c"]
    out = consulpy("kv", "delete", a, "-recurse", "tree/")
    assert out.stdout.strip() == "Success! Deleted keys with prefix: tree/"
    out = consulpy("kv", "get", a, "tree/a")
    assert out.returncode == 1 and out.stderr.strip() == "Error! No key exists at: tree/a"
    out = consulpy("kv", "import", a, "-", stdin=exported.stdout)
    assert out.stdout.splitlines() == ["Imported: tree/a", "Imported: tree/b/c"]
    assert consulpy("kv", "get", a, "tree/b/c").stdout == "TREE/B/C\n"
    out = consulpy("kv", "delete", a, "tree/a")
    assert out.stdout.strip() == "Success! Deleted key: tree/a"


def test_members_and_errors(agent: AgentProcess) -> None:
    out = consulpy("members", f"-http-addr={agent.http_addr}")
    assert out.returncode == 0
    assert out.stdout.splitlines()[1].split()[:4] == [
        "cli-test",
        out.stdout.splitlines()[1].split()[1],
        "alive",
        "server",
    ]
    out = consulpy("kv", "get", "-http-addr=127.0.0.1:1", "x")
    assert out.returncode == 1 and "Error" in out.stderr


async def test_graceful_shutdown_on_sigterm() -> None:
    # A server leaves on SIGTERM only with leave_on_terminate (Consul's server default: false).
    proc = AgentProcess(*DEV_FLAGS, "-hcl", "leave_on_terminate = true").start()
    assert proc.stop() == 0
    await eventually(lambda: "Gracefully shutting down agent" in proc.output())
    await eventually(lambda: "Graceful exit completed" in proc.output())


def test_invalid_config_exits_1(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"ports": {"http": "abc"}}')
    out = consulpy("agent", "-dev", f"-config-file={bad}")
    assert out.returncode == 1
    assert "bad.json" in out.stderr and "ports.http" in out.stderr


def test_services_catalog_maint_reload(agent: AgentProcess, tmp_path) -> None:
    a = f"-http-addr={agent.http_addr}"
    out = consulpy("services", "register", a, "-name=web", "-port=8080", "-tag=v1", "-tag=v2")
    assert out.returncode == 0 and out.stdout.strip() == "Registered service: web"
    svc_file = tmp_path / "api.hcl"
    svc_file.write_text('service {\n  name = "api"\n  port = 9090\n}\n')
    out = consulpy("services", "register", a, str(svc_file))
    assert out.stdout.strip() == "Registered service: api"
    out = consulpy("catalog", "services", a, "-tags")
    assert "web" in out.stdout and "v1,v2" in out.stdout and "api" in out.stdout
    out = consulpy("catalog", "nodes", a)
    assert out.stdout.splitlines()[0].split() == ["Node", "ID", "Address", "DC"]
    assert "cli-test" in out.stdout
    assert consulpy("catalog", "datacenters", a).stdout.strip() == "dc1"
    out = consulpy("maint", a, "-enable", "-reason=upgrading")
    assert out.stdout.strip() == "Node maintenance is now enabled"
    out = consulpy("maint", a)
    assert "upgrading" in out.stdout
    out = consulpy("maint", a, "-disable", "-service=web")
    assert out.stdout.strip() == 'Service maintenance is now disabled for "web"'
    consulpy("maint", a, "-disable")
    out = consulpy("services", "deregister", a, "-id=web")
    assert out.stdout.strip() == "Deregistered service: web"
    out = consulpy("services", "deregister", a, str(svc_file))
    assert out.stdout.strip() == "Deregistered service: api"
    out = consulpy("reload", a)
    assert out.stdout.strip() == "Configuration reload triggered", out.stderr


def test_intention_config_and_ca_commands(agent: AgentProcess, tmp_path) -> None:
    a = f"-http-addr={agent.http_addr}"
    out = consulpy("intention", "create", a, "-deny", "web", "db")
    assert out.stdout.strip() == "Created: web => db (deny)", out.stderr
    out = consulpy("intention", "create", a, "-allow", "web", "db")
    assert out.returncode == 1 and "already exists" in out.stderr
    assert consulpy("intention", "create", a, "-allow", "-replace", "web", "db").returncode == 0
    out = consulpy("intention", "check", a, "web", "db")
    assert (out.returncode, out.stdout.strip()) == (0, "Allowed")
    consulpy("intention", "create", a, "-deny", "*", "db")
    out = consulpy("intention", "check", a, "api", "db")
    assert (out.returncode, out.stdout.strip()) == (2, "Denied")
    out = consulpy("intention", "list", a)
    assert out.stdout.splitlines()[0].split() == [
        "ID",
        "Source",
        "Action",
        "Destination",
        "Precedence",
    ]
    out = consulpy("intention", "match", a, "db")
    assert out.stdout.splitlines() == ["web => db (allow)", "* => db (deny)"]
    out = consulpy("intention", "get", a, "web", "db")
    assert "Precedence:" in out.stdout and "allow" in out.stdout
    assert consulpy("intention", "delete", a, "web", "db").stdout.strip() == "Intention deleted."
    entry = tmp_path / "defaults.hcl"
    entry.write_text('Kind = "service-defaults"\nName = "web"\nProtocol = "http"\n')
    out = consulpy("config", "write", a, str(entry))
    assert out.stdout.strip() == "Config entry written: service-defaults/web", out.stderr
    out = consulpy("config", "read", a, "-kind=service-defaults", "-name=web")
    assert '"Protocol": "http"' in out.stdout
    assert consulpy("config", "list", a, "-kind=service-defaults").stdout.strip() == "web"
    out = consulpy("config", "delete", a, "-kind=service-defaults", "-name=web")
    assert out.stdout.strip() == "Config entry deleted: service-defaults/web"
    out = consulpy("connect", "ca", "get-config", a)
    assert '"Provider": "consul"' in out.stdout
    ca_conf = tmp_path / "ca.json"
    ca_conf.write_text('{"Provider": "consul", "Config": {"LeafCertTTL": "24h"}}')
    out = consulpy("connect", "ca", "set-config", a, f"-config-file={ca_conf}")
    assert out.stdout.strip() == "Configuration updated!", out.stderr
