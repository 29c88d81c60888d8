"""`consulpy agent` starts through the composition root: a listener that cannot open stops
what already started and ends with one clear line, not a traceback."""

from __future__ import annotations

import re
import socket

from tests.cli.agentproc import AgentProcess, consulpy

FLAGS = (
    "-dev",
    "-bind=127.0.0.1",
    "-client=127.0.0.1",
    "-server-port=0",
    "-serf-lan-port=0",
    "-serf-wan-port=-1",
    "-dns-port=-1",
    "-log-level=warn",
)


def test_http_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = consulpy("agent", *FLAGS, "-grpc-port=-1", f"-http-port={port}")
    assert result.returncode == 1, result.stderr
    assert "==> Error starting agent:" in result.stderr
    assert str(port) in result.stderr
    assert "Traceback" not in result.stderr


def test_grpc_tls_without_a_certificate_is_a_clear_error() -> None:
    result = consulpy(
        "agent", *FLAGS, "-http-port=0", "-grpc-port=-1", "-hcl", "ports { grpc_tls = 0 }"
    )
    assert result.returncode == 1, result.stderr
    assert (
        "==> Error starting agent: gRPC (xDS) listener: ports.grpc_tls needs tls.grpc "
        "(or tls.defaults) cert_file and key_file"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_banner_shows_the_listeners_the_runtime_bound() -> None:
    agent = AgentProcess(*FLAGS, "-http-port=0", "-grpc-port=0").start()
    try:
        banner = agent.output()
        assert f"HTTP: {agent.http_addr}" in banner
        grpc = re.search(r"gRPC: (-?\d+),", banner)
        assert grpc is not None and int(grpc.group(1)) > 0, banner  # the port xDS bound
    finally:
        # A server's SIGTERM does not leave (leave_on_terminate is false): exit 1, as Consul.
        assert agent.stop() == 1
