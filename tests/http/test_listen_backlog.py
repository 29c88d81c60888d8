"""The HTTP listeners' accept queue is the kernel's cap, as a Go listener's is: thousands of
watchers reconnecting at once overflowed aiohttp's 128 and had connections reset."""

from __future__ import annotations

import subprocess

from consulpy.http.app import listen_backlog
from consulpy.testing import DevAgent

# `ss` comes with Debian's iproute2, which .ci/run installs (the netns tests need it too).


async def test_the_http_listener_asks_for_the_kernels_accept_queue(agent: DevAgent) -> None:
    port = agent.http_addr.rsplit(":", 1)[1]
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    state, _recv_q, send_q, *_ = out.split()  # a listener's Send-Q is its backlog
    assert state == "LISTEN"
    with open("/proc/sys/net/core/somaxconn", encoding="ascii") as f:
        somaxconn = int(f.read())
    assert int(send_q) == listen_backlog() == max(somaxconn, 128)
