"""Agents as real processes for the operations tests, and a small HTTP helper."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from consulpy.bench.mem import proc_memory
from tests.cli.agentproc import AgentProcess

BASE = (
    "-bind=127.0.0.1",
    "-client=127.0.0.1",
    "-http-port=0",
    "-server-port=0",
    "-serf-lan-port=0",
    "-serf-wan-port=-1",
    "-dns-port=-1",
    "-grpc-port=-1",
)
DEV = ("-dev", *BASE)
LAN = re.compile(r"Cluster Addr: (\S+) \(LAN: (\d+)")


def start(*flags: str) -> AgentProcess:
    return AgentProcess(*flags).start()


def serf_addr(agent: AgentProcess) -> str:
    match = LAN.search(agent.output())
    assert match, agent.output()
    return f"{match.group(1)}:{match.group(2)}"


def call(
    agent: AgentProcess, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{agent.http_addr}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(agent: AgentProcess, path: str) -> Any:
    status, body = call(agent, "GET", path)
    assert status == 200, body
    return json.loads(body)


def reset_peak(pid: int) -> int:
    """Set process `pid`'s peak RSS (VmHWM) to its current RSS, and return that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return proc_memory(pid)["rss"]
