"""performance.leave_drain_time: a server that leaves gracefully keeps answering for that long
after leaving gossip (clients that have not seen the leave yet still get answers), then exits."""

from __future__ import annotations

import asyncio
import signal

from tests.helpers import eventually
from tests.ops.procs import DEV, get_json, start


async def test_a_leaving_server_serves_during_the_drain_then_exits() -> None:
    agent = start(
        *DEV,
        "-log-level=info",
        "-hcl",
        'skip_leave_on_interrupt = false\nperformance { leave_drain_time = "8s" }',
    )
    try:
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGINT)
        await eventually(
            lambda: "waiting to drain RPC traffic" in agent.output(),
            timeout=30,
            what="the drain log line",
        )
        assert "drain_time=8s" in agent.output()
        # left gossip, still serving
        assert agent.proc.poll() is None
        assert get_json(agent, "/v1/agent/self")["Config"]["NodeName"]
        code = await asyncio.get_running_loop().run_in_executor(None, agent.proc.wait, 60)
        assert code == 0, agent.output()[-3000:]
        assert "Graceful exit completed" in agent.output()
    finally:
        agent.kill()
