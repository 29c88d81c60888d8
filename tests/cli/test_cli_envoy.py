"""`consulpy connect envoy`: which proxy it picks, what it prints, how it fails."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.cli.test_cli_kv import DEV_FLAGS


def _put(addr: str, path: str, body: dict) -> None:
    req = urllib.request.Request(
        f"http://{addr}{path}", data=json.dumps(body).encode(), method="PUT"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    proc = AgentProcess(*DEV_FLAGS, "-grpc-port=0").start()
    try:
        _put(
            proc.http_addr,
            "/v1/agent/service/register",
            {
                "Name": "web",
                "Port": 8080,
                "Connect": {
                    "SidecarService": {
                        "Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}
                    }
                },
            },
        )
        _put(proc.http_addr, "/v1/agent/service/register", {"Name": "plain", "Port": 1})
        yield proc
    finally:
        proc.kill()


def _self(addr: str) -> dict:
    with urllib.request.urlopen(f"http://{addr}/v1/agent/self", timeout=30) as resp:
        return json.loads(resp.read())


def test_agent_self_reports_the_xds_port(agent: AgentProcess) -> None:
    xds = _self(agent.http_addr)["xDS"]
    port = xds["Ports"]["Plaintext"]
    assert port > 0 and xds["Port"] == port and xds["Ports"]["TLS"] == -1
    assert xds["SupportedProxies"]["envoy"]


def test_bootstrap_for_sidecar(agent: AgentProcess) -> None:
    out = consulpy(
        "connect",
        "envoy",
        "-sidecar-for",
        "web",
        "-bootstrap",
        "-http-addr",
        agent.http_addr,
        "-admin-bind",
        "127.0.0.1:19555",
    )
    assert out.returncode == 0, out.stderr
    boot = json.loads(out.stdout)
    assert boot["node"]["id"] == "web-sidecar-proxy"
    assert boot["node"]["cluster"] == "web"
    assert boot["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19555,
    }
    (agent_cluster,) = boot["static_resources"]["clusters"]
    address = agent_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    grpc_port = _self(agent.http_addr)["xDS"]["Ports"]["Plaintext"]
    assert address["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": grpc_port}
    ads = boot["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "DELTA_GRPC"


def test_proxy_id_and_grpc_addr_flags(agent: AgentProcess) -> None:
    out = consulpy(
        "connect",
        "envoy",
        "-proxy-id",
        "web-sidecar-proxy",
        "-bootstrap",
        "-grpc-addr",
        "localhost:9999",
        "-token",
        "secret",
        "-http-addr",
        agent.http_addr,
    )
    assert out.returncode == 0, out.stderr
    boot = json.loads(out.stdout)
    endpoint = boot["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    assert endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 9999,
    }
    metadata = boot["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"]
    assert {"key": "x-consul-token", "value": "secret"} in metadata


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-sidecar-for", "nope"], "No sidecar proxy registered for nope"),
        (["-proxy-id", "plain"], "is not a connect-proxy"),
        (["-proxy-id", "ghost"], "No service with ID 'ghost'"),
        ([], "One of -proxy-id or -sidecar-for is required"),
        (["-sidecar-for", "web", "-grpc-addr", "https://127.0.0.1:1"], "-grpc-ca-file"),
        (["-sidecar-for", "web", "-grpc-addr", "ftp://x:1"], "invalid -grpc-addr"),
        (["-sidecar-for", "web", "-grpc-addr", "127.0.0.1:port"], "invalid -grpc-addr"),
        (["-gateway=mesh", "-register", "-address", "127.0.0.1:x"], "invalid -address"),
        (["-gateway=mesh", "-proxy-id", "plain"], "is not a mesh-gateway"),
        (["-gateway=ingress", "-register", "-wan-address", "1.2.3.4:1"], "only valid with"),
        (["-sidecar-for", "web", "-wan-address", "1.2.3.4:1"], "-wan-address is only"),
        (["-gateway=mesh", "-sidecar-for", "web"], "mutually exclusive"),
    ],
)
def test_errors(agent: AgentProcess, args: list[str], message: str) -> None:
    out = consulpy("connect", "envoy", "-bootstrap", "-http-addr", agent.http_addr, *args)
    assert out.returncode == 1
    assert message in out.stderr, out.stderr


def test_grpc_target_prefers_tls_when_it_can_verify_it(tmp_path) -> None:
    from consulpy.cli.envoy import grpc_target

    both = {"Ports": {"Plaintext": 8502, "TLS": 8503}}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert grpc_target(None, "http://127.0.0.1:8500", both, str(ca)) == (
        "127.0.0.1",
        8503,
        "-----BEGIN CERTIFICATE-----\n",
    )
    assert grpc_target(None, "http://127.0.0.1:8500", both, None) == ("127.0.0.1", 8502, None)
    assert grpc_target("unix:///run/xds.sock", "", None, None) == ("unix:///run/xds.sock", 0, None)


def test_gateway_register_and_bootstrap(agent: AgentProcess) -> None:
    out = consulpy(
        "connect",
        "envoy",
        "-gateway=terminating",
        "-register",
        "-service",
        "term",
        "-address",
        "127.0.0.1:8443",
        "-bootstrap",
        "-http-addr",
        agent.http_addr,
    )
    assert out.returncode == 0, out.stderr
    boot = json.loads(out.stdout)
    assert boot["node"]["id"] == "term" and boot["node"]["cluster"] == "term"
    with urllib.request.urlopen(f"http://{agent.http_addr}/v1/agent/service/term") as resp:
        service = json.loads(resp.read())
    assert (service["Kind"], service["Address"], service["Port"]) == (
        "terminating-gateway",
        "127.0.0.1",
        8443,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-gateway=bogus", "-register"], "invalid -gateway 'bogus'"),
        (["-gateway=terminating", "-register", "-service", "t"], "needs -address"),
        (["-gateway=ingress", "-register", "-address", "127.0.0.1"], "invalid -address"),
        (["-gateway=ingress", "-service", "never"], "No gateway with ID 'never'"),
        (["-gateway=ingress", "-proxy-id", "plain"], "is not an ingress-gateway"),
        (["-register", "-sidecar-for", "web"], "-register is only supported with -gateway"),
    ],
)
def test_gateway_errors(agent: AgentProcess, args: list[str], message: str) -> None:
    out = consulpy("connect", "envoy", "-bootstrap", "-http-addr", agent.http_addr, *args)
    assert out.returncode == 1
    assert message in out.stderr, out.stderr


def test_mesh_gateway_register_and_bootstrap(agent: AgentProcess) -> None:
    """-gateway=mesh -register: a mesh-gateway service with lan/wan tagged addresses and a
    TCP check on its address, then the bootstrap of that service."""
    out = consulpy(
        "connect",
        "envoy",
        "-gateway=mesh",
        "-register",
        "-service",
        "gw-east",
        "-address",
        "127.0.0.1:18443",
        "-wan-address",
        "198.51.100.7:443",
        "-bootstrap",
        "-http-addr",
        agent.http_addr,
    )
    assert out.returncode == 0, out.stderr
    boot = json.loads(out.stdout)
    assert boot["node"]["id"] == "gw-east" and boot["node"]["cluster"] == "gw-east"
    with urllib.request.urlopen(f"http://{agent.http_addr}/v1/agent/service/gw-east") as r:
        svc = json.loads(r.read())
    assert svc["Kind"] == "mesh-gateway"
    assert (svc["Address"], svc["Port"]) == ("127.0.0.1", 18443)
    assert svc["TaggedAddresses"]["lan"] == {"Address": "127.0.0.1", "Port": 18443}
    assert svc["TaggedAddresses"]["wan"] == {"Address": "198.51.100.7", "Port": 443}
    with urllib.request.urlopen(f"http://{agent.http_addr}/v1/agent/checks") as r:
        checks = [c for c in json.loads(r.read()).values() if c["ServiceID"] == "gw-east"]
    assert [c["Name"] for c in checks] == ["gw-east listening"]
