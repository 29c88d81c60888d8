"""Clients over HTTPS with a client certificate: py-consul, and the `consulpy` CLI through
Consul's environment variables and flags."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import consul
import pytest

from consulpy.testing import DevAgent
from tests.tls.certs import Material, https_config, make_material


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def agent(material: Material) -> Iterator[DevAgent]:
    config = https_config(material, verify_incoming=True)
    with DevAgent(flags=["-https-port=0", "-http-port=-1"], config=config).in_thread() as dev:
        yield dev


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "consulpy", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_py_consul_with_a_client_certificate(agent: DevAgent, material: Material) -> None:
    host, port = agent.https_addr.rsplit(":", 1)
    c = consul.Consul(
        host=host,
        port=int(port),
        scheme="https",
        verify=str(material.ca),
        cert=(str(material.client_cert), str(material.client_key)),
    )
    assert c.kv.put("tls/py", "hello") is True
    _, item = c.kv.get("tls/py")
    assert item["Value"] == b"hello"
    assert c.status.leader()

    bare = consul.Consul(host=host, port=int(port), scheme="https", verify=str(material.ca))
    with pytest.raises(Exception, match=r"(?i)ssl|certificate|connection|reset|alert"):
        bare.kv.get("tls/py")


def test_cli_with_consul_environment_variables(agent: DevAgent, material: Material) -> None:
    env = {
        "CONSUL_HTTP_ADDR": agent.https_url,
        "CONSUL_CACERT": str(material.ca),
        "CONSUL_CLIENT_CERT": str(material.client_cert),
        "CONSUL_CLIENT_KEY": str(material.client_key),
    }
    put = cli("kv", "put", "tls/cli", "v1", env=env)
    assert put.returncode == 0, put.stderr
    got = cli("kv", "get", "tls/cli", env=env)
    assert (got.returncode, got.stdout.strip()) == (0, "v1"), got.stderr

    # CONSUL_HTTP_SSL turns a bare host:port into https
    ssl_env = {**env, "CONSUL_HTTP_ADDR": agent.https_addr, "CONSUL_HTTP_SSL": "true"}
    got = cli("kv", "get", "tls/cli", env=ssl_env)
    assert (got.returncode, got.stdout.strip()) == (0, "v1"), got.stderr

    # no client certificate: the agent refuses the connection
    bare = {k: v for k, v in env.items() if not k.startswith("CONSUL_CLIENT_")}
    refused = cli("kv", "get", "tls/cli", env=bare)
    assert refused.returncode != 0
    assert "Error connecting to agent" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_flags_and_server_name(agent: DevAgent, material: Material) -> None:
    flags = [
        f"-http-addr={agent.https_url}",
        f"-ca-file={material.ca}",
        f"-client-cert={material.client_cert}",
        f"-client-key={material.client_key}",
    ]
    got = cli("kv", "put", *flags, "tls/flags", "x", env={})
    assert got.returncode == 0, got.stderr

    # the name checked against the server's certificate is -tls-server-name, not the address
    named = cli("kv", "get", *flags, "-tls-server-name=server.dc1.consul", "tls/flags", env={})
    assert (named.returncode, named.stdout.strip()) == (0, "x"), named.stderr
    wrong = cli("kv", "get", *flags, "-tls-server-name=elsewhere.example", "tls/flags", env={})
    assert wrong.returncode != 0
    assert "elsewhere.example" in wrong.stderr or "certificate" in wrong.stderr.lower()
    env_wrong = cli(
        "kv", "get", *flags, "tls/flags", env={"CONSUL_TLS_SERVER_NAME": "elsewhere.example"}
    )
    assert env_wrong.returncode != 0

    # CONSUL_HTTP_SSL_VERIFY=false: no CA needed
    unverified = cli(
        "kv",
        "get",
        f"-http-addr={agent.https_url}",
        f"-client-cert={material.client_cert}",
        f"-client-key={material.client_key}",
        "tls/flags",
        env={"CONSUL_HTTP_SSL_VERIFY": "false"},
    )
    assert (unverified.returncode, unverified.stdout.strip()) == (0, "x"), unverified.stderr
    verified = cli(
        "kv",
        "get",
        f"-http-addr={agent.https_url}",
        f"-client-cert={material.client_cert}",
        f"-client-key={material.client_key}",
        "tls/flags",
        env={},
    )
    assert verified.returncode != 0  # the agent CA is not a system CA


def test_cli_ca_path(agent: DevAgent, material: Material, tmp_path: Path) -> None:
    (tmp_path / "any-name.crt").write_bytes(material.ca.read_bytes())
    env = {
        "CONSUL_HTTP_ADDR": agent.https_url,
        "CONSUL_CAPATH": str(tmp_path),
        "CONSUL_CLIENT_CERT": str(material.client_cert),
        "CONSUL_CLIENT_KEY": str(material.client_key),
    }
    got = cli("members", env=env)
    assert got.returncode == 0, got.stderr
    assert "consulpy-test" in got.stdout


def test_cli_bad_ca_file_is_a_clear_error(agent: DevAgent, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    got = cli("kv", "get", f"-http-addr={agent.https_url}", f"-ca-file={missing}", "a", env={})
    assert got.returncode != 0
    assert "Traceback" not in got.stderr
    assert "TLS" in got.stderr
