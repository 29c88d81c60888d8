"""Start `consulpy agent` as a real process and find where it listens (from its banner)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

BANNER_HTTP = re.compile(r"HTTP: (\d+\.\d+\.\d+\.\d+:\d+)")


class AgentProcess:
    def __init__(self, *flags: str) -> None:
        self.argv = [sys.executable, "-m", "consulpy", "agent", *flags]
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.http_addr = ""

    def start(self, timeout: float = 60) -> AgentProcess:
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.http_addr:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError("agent did not start:\n" + "".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("agent exited:\n" + "".join(self.lines))
            match = BANNER_HTTP.search(line)
            if match:
                self.http_addr = match.group(1)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def output(self) -> str:
        return "".join(self.lines)


def consulpy(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, addr: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("CONSUL_HTTP_ADDR", None)
    if env:
        full_env.update(env)
    argv: Sequence[str] = [sys.executable, "-m", "consulpy", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env=full_env, input=stdin, timeout=60, check=False
    )
