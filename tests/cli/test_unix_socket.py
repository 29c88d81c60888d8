"""The HTTP API on a unix socket (`addresses.http = "unix:///path"`, `unix_sockets`): the
socket gets the configured mode and owner, curl and the consulpy CLI reach the agent through
it, and it is gone when the agent stops."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.cli.test_cli_agent_start import FLAGS


def test_http_api_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    sock.write_text("stale")  # a regular file in the way is refused, not replaced
    config = tmp_path / "agent.hcl"
    owner = "nobody" if os.geteuid() == 0 else str(os.getuid())
    config.write_text(
        f'addresses {{ http = "127.0.0.1 unix://{sock}" }}\n'
        f'unix_sockets {{ mode = "0660" user = "{owner}" group = "{os.getgid()}" }}\n'
    )
    flags = (*FLAGS, "-http-port=0", "-grpc-port=-1", f"-config-file={config}")
    refused = consulpy("agent", *flags)
    assert refused.returncode == 1
    assert "is not a unix socket" in refused.stderr
    sock.unlink()

    agent = AgentProcess(*flags).start()
    try:
        assert f"unix://{sock}" in agent.output()  # the banner names the socket
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_uid == (int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid)
        assert st.st_gid == os.getgid()

        curl = subprocess.run(
            ["curl", "-sf", "--unix-socket", str(sock), "http://localhost/v1/agent/self"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["Config"]["NodeName"]

        put = consulpy("kv", "put", "via/socket", "yes", env={"CONSUL_HTTP_ADDR": f"unix://{sock}"})
        assert put.returncode == 0, put.stderr
        got = consulpy("kv", "get", f"-http-addr=unix://{sock}", "via/socket")
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == "yes"
        # The same store behind the TCP listener.
        tcp = consulpy("kv", "get", f"-http-addr={agent.http_addr}", "via/socket")
        assert tcp.stdout.strip() == "yes"
    finally:
        agent.stop()
    assert not sock.exists()

    gone = consulpy("members", env={"CONSUL_HTTP_ADDR": f"unix://{sock}"})
    assert gone.returncode == 1
    assert f"Error connecting to agent at unix://{sock}" in gone.stderr


@pytest.mark.parametrize("key", ["dns", "grpc"])
def test_unix_sockets_only_for_http(key: str) -> None:
    result = consulpy("agent", *FLAGS, "-hcl", f'addresses {{ {key} = "unix:///tmp/x.sock" }}')
    assert result.returncode == 1
    assert f"addresses.{key}" in result.stderr and "unix sockets are not" in result.stderr
