"""pid_file: the agent writes its process id once it runs and removes the file at exit."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.cli.agentproc import AgentProcess
from tests.ops.procs import DEV, start


def test_pid_file_is_written_at_start_and_removed_at_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "consul.pid"
    agent = start(*DEV, f"-pid-file={pid_file}")
    try:
        assert agent.proc is not None
        assert pid_file.read_text().strip() == str(agent.proc.pid)
        agent.proc.send_signal(signal.SIGINT)
        agent.proc.wait(60)
        assert not pid_file.exists()
    finally:
        agent.stop()


def test_unwritable_pid_file_stops_the_agent_with_the_reason(tmp_path: Path) -> None:
    agent = AgentProcess(*DEV, f"-pid-file={tmp_path / 'missing-dir' / 'consul.pid'}")
    with pytest.raises(AssertionError, match="Could not write PID file"):
        agent.start()
    agent.stop()
