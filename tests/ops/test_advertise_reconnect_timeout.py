"""advertise_reconnect_timeout: a client agent advertises its own reconnect timeout (gossip tag
`rc_tm`), and the others forget it that long after it fails instead of after reconnect_timeout
(72h by default). Only client agents may set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consulpy.config import ConfigError, load_agent_config
from tests.helpers import eventually
from tests.ops.procs import BASE, DEV, get_json, serf_addr, start


def _member(observer: object, name: str) -> dict | None:
    for member in get_json(observer, "/v1/agent/members"):  # type: ignore[arg-type]
        if member["Name"] == name:
            return dict(member)
    return None


async def test_a_failed_client_is_forgotten_after_its_advertised_timeout(tmp_path: Path) -> None:
    server = start(*DEV, "-node=srv", "-log-level=warn")
    agents = [server]
    try:
        client = start(
            *BASE,
            "-node=short",
            f"-data-dir={tmp_path}",
            f"-retry-join={serf_addr(server)}",
            "-hcl",
            'advertise_reconnect_timeout = "2s"',
        )
        agents.append(client)
        await eventually(lambda: _member(server, "short") is not None, timeout=30, what="joined")
        assert _member(server, "short")["Tags"]["rc_tm"] == "2s"  # type: ignore[index]
        client.kill()
        await eventually(
            lambda: (_member(server, "short") or {}).get("Status") == 4,
            timeout=60,
            what="the client failed",
        )
        # reaped (reap pass every 15 s) instead of kept for reconnect_timeout (72h)
        await eventually(lambda: _member(server, "short") is None, timeout=60, what="reaped")
    finally:
        for agent in agents:
            agent.kill()


def test_servers_may_not_set_it() -> None:
    with pytest.raises(ConfigError, match="advertise_reconnect_timeout can only be used on a"):
        load_agent_config(["-dev", "-hcl", 'advertise_reconnect_timeout = "1h"'])
