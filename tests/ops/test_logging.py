"""Logs: the rotated log_file, syslog, the level asked by /v1/agent/monitor and `consulpy
monitor`, JSON lines, and Consul's 400 for an unknown level."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from consulpy.log import RotatingLogFile
from tests.cli.agentproc import AgentProcess
from tests.helpers import eventually
from tests.ops.procs import DEV, call, get_json, start


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)


def test_the_log_file_rotates_by_bytes_and_keeps_max_files(tmp_path: Path) -> None:
    handler = RotatingLogFile(str(tmp_path) + "/", rotate_bytes=100, max_files=2)
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        assert handler.path == str(tmp_path / "consul.log")
        for i in range(10):
            handler.emit(_record(f"line {i:02d} " + "x" * 60))  # 70 bytes a line
        archives = handler.archives()
        assert len(archives) == 2  # 4 rotations happened, the 2 newest archives are kept
        assert all(Path(a).name.startswith("consul-") for a in archives)
        assert all(a.endswith(".log") for a in archives)
        # Rotation is checked before a write: 2 lines (140 bytes >= 100) per file.
        assert Path(archives[-1]).read_text().splitlines()[0].startswith("line 06")
        assert Path(handler.path).read_text().splitlines()[0].startswith("line 08")
        assert oct(os.stat(handler.path).st_mode & 0o777) == oct(0o640)
    finally:
        handler.close()


def test_max_files_zero_keeps_all_and_minus_one_keeps_none(tmp_path: Path) -> None:
    for keep, expected in ((0, 4), (-1, 0)):
        d = tmp_path / str(keep)
        handler = RotatingLogFile(str(d / "agent"), rotate_bytes=10, max_files=keep)
        handler.setFormatter(logging.Formatter("%(message)s"))
        for i in range(5):
            handler.emit(_record(f"a longer line {i}"))
        handler.close()
        assert len(list(d.glob("agent-*.log"))) == expected
        assert (d / "agent").is_file()  # the active file keeps its name


async def test_agent_writes_and_rotates_its_log_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    agent = start(
        *DEV,
        f"-log-file={logs}/",
        "-log-rotate-bytes=2000",
        "-log-rotate-max-files=3",
        "-log-level=debug",
    )
    try:

        def rotated() -> bool:
            get_json(agent, "/v1/agent/self")
            return len(list(logs.glob("consul-*.log"))) >= 3

        await eventually(rotated, what="three archives")
        assert "Request finished" in (logs / "consul.log").read_text()
        assert len(list(logs.glob("consul-*.log"))) <= 3
        await eventually(  # the console keeps logging too
            lambda: "Request finished" in agent.output(), what="console lines"
        )
    finally:
        agent.stop()


async def test_syslog_gets_the_lines_with_the_facility(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    monkeypatch.setenv("CONSULPY_SYSLOG_ADDRESS", path)  # the agent process inherits it
    agent = AgentProcess(*DEV, "-syslog", "-hcl", 'syslog_facility = "LOCAL3"').start()
    try:
        data = b""
        while b"agent started" not in data:
            data = sock.recv(65536)
        # <priority> = facility LOCAL3 (19) * 8 + INFO (6)
        assert data.startswith(b"<158>consul: "), data
        # The reader stops reading here; the -dev agent keeps logging at debug level into the
        # full socket. It must neither stall nor miss its shutdown (it drops syslog lines).
        for _ in range(200):
            assert call(agent, "GET", "/v1/agent/self")[0] == 200
    finally:
        agent.stop()
        sock.close()


def test_syslog_without_a_listener_fails_at_start(tmp_path: Path) -> None:
    env = dict(os.environ, CONSULPY_SYSLOG_ADDRESS=str(tmp_path / "nobody"))
    out = subprocess.run(
        [sys.executable, "-m", "consulpy", "agent", *DEV, "-syslog"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert "==> Failed to setup logging:" in out.stderr


MONITOR = (sys.executable, "-m", "consulpy", "monitor")


class Stream:
    """Reads a streaming HTTP response in a thread, line by line."""

    def __init__(self, url: str) -> None:
        self.resp = urllib.request.urlopen(url, timeout=60)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.resp:
                self.lines.append(raw.decode())
        except (OSError, ValueError, AttributeError):  # closed under the reader
            pass

    def close(self) -> None:
        # Shut the socket down first: close() alone waits for the reader thread's recv (it
        # holds the buffer's lock) until the read timeout.
        with contextlib.suppress(OSError, AttributeError):
            self.resp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        self.resp.close()


async def test_monitor_streams_at_the_level_asked() -> None:
    agent = start(*DEV, "-log-level=warn")
    base = f"http://{agent.http_addr}/v1/agent/monitor"
    debug = Stream(f"{base}?loglevel=DEBUG")
    info = Stream(f"{base}?loglevel=info")
    jsonl = Stream(f"{base}?loglevel=debug&logjson")
    try:

        def requests_seen() -> bool:
            get_json(agent, "/v1/agent/self")
            return any("Request finished" in line for line in debug.lines) and bool(jsonl.lines)

        await eventually(requests_seen, what="debug lines on the monitor")
        assert all("[DEBUG]" in line or "[INFO]" in line for line in debug.lines if line[:1] == "2")
        call(agent, "PUT", "/v1/agent/reload")  # logs at info
        await eventually(
            lambda: any("configuration reloaded" in line for line in info.lines),
            what="info line on the info monitor",
        )
        assert not any("[DEBUG]" in line for line in info.lines)
        doc = json.loads(jsonl.lines[0])
        assert doc["level"] in ("debug", "info") and doc["event"]
        # The agent itself logs at warn: neither line reached its console.
        assert "Request finished" not in agent.output()
        assert "configuration reloaded" not in agent.output()
    finally:
        for stream in (debug, info, jsonl):
            stream.close()
        agent.stop()


@pytest.mark.parametrize("level", ["foo", "warning"])
def test_monitor_refuses_an_unknown_level(level: str) -> None:
    agent = start(*DEV, "-log-level=warn")
    try:
        status, body = call(agent, "GET", f"/v1/agent/monitor?loglevel={level}")
        assert status == 400
        assert body == f"Unknown log level: {level}".encode()
    finally:
        agent.stop()


async def test_consulpy_monitor_prints_lines_at_its_level() -> None:
    agent = start(*DEV, "-log-level=warn")
    proc = subprocess.Popen(
        [*MONITOR, f"-http-addr={agent.http_addr}", "-log-level=debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:

        def seen() -> bool:
            get_json(agent, "/v1/agent/members")
            return any("url=/v1/agent/members" in line for line in lines)

        await eventually(seen, what="consulpy monitor printing the debug line")
        bad = subprocess.run(
            [*MONITOR, f"-http-addr={agent.http_addr}", "-log-level=loud"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1
        assert "Unknown log level: loud" in bad.stderr
    finally:
        agent.stop()
        proc.wait(30)  # the agent went away: monitor ends by itself
    assert proc.returncode == 0
