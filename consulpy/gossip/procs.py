"""Run gossip agents as real processes: Debian's ``serf agent`` or our ``agent_main``.

Both are driven through Serf's RPC protocol, so interop tests and the benchmark treat them
alike. Ports come from the OS (bind port 0 for ours; probed free ports for serf, which
cannot report the port it bound, with a new start on new ports if one was taken meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field

from consulpy.gossip.rpc import RPCClient
from consulpy.util.ports import aretry_on_addr_in_use, free_ports

SERF_BIN = shutil.which("serf") or "/usr/bin/serf"
# So a child `python -m consulpy.gossip.agent_main` imports this same source tree.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def serf_available() -> bool:
    return os.path.exists(SERF_BIN) and os.access(SERF_BIN, os.X_OK)


@dataclass
class AgentProcess:
    kind: str  # "serf" or "consulpy"
    name: str
    host: str = "127.0.0.1"
    encrypt: str = ""
    profile: str = "lan"
    tags: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    gossip_port: int = 0
    rpc_port: int = 0
    proc: asyncio.subprocess.Process | None = None
    log_path: str = ""

    @property
    def gossip_addr(self) -> str:
        return f"{self.host}:{self.gossip_port}"

    @property
    def rpc_addr(self) -> str:
        return f"{self.host}:{self.rpc_port}"

    async def start(self, join: list[str] | None = None, timeout: float = 20.0) -> None:
        """Start the agent and wait until its RPC port answers. Ours binds port 0 and reports
        its ports; serf must be given them, so a serf start that finds one taken starts again
        on new ones."""
        if self.kind == "serf":
            await aretry_on_addr_in_use(lambda: self._start_once(join, timeout), self._discard)
        else:
            await self._start_once(join, timeout)

    async def _discard(self) -> None:
        """Clean up after a start that failed, before the next attempt."""
        await self.stop()
        self.proc = None

    async def _start_once(self, join: list[str] | None, timeout: float) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=f"gossip-{self.name}-", suffix=".log")
        os.close(fd)
        tag_args = [x for k, v in self.tags.items() for x in ("-tag", f"{k}={v}")]
        common = [f"-node={self.name}", *tag_args, *self.extra]
        if self.encrypt:
            common.append(f"-encrypt={self.encrypt}")
        if self.kind == "serf":
            # Distinct, and the gossip one free for UDP too (serf listens on both).
            self.gossip_port, self.rpc_port = free_ports(2, self.host, udp=True)
            cmd = [
                SERF_BIN,
                "agent",
                f"-bind={self.host}:{self.gossip_port}",
                f"-rpc-addr={self.host}:{self.rpc_port}",
                f"-profile={self.profile}",
                *common,
                *[f"-join={j}" for j in join or []],
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "consulpy.gossip.agent_main",
                f"-bind={self.host}:0",
                f"-rpc-addr={self.host}:0",
                f"-profile={self.profile}",
                *common,
                *[f"-join={j}" for j in join or []],
            ]
        log = open(self.log_path, "wb")  # noqa: SIM115, ASYNC230 - handed to the child
        env = dict(os.environ)
        if self.kind == "consulpy":
            env["PYTHONPATH"] = _SOURCE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE if self.kind == "consulpy" else log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.kind == "consulpy":
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            m = re.search(rb"gossip=(\d+) rpc=(\d+)", line)
            if not m:
                raise RuntimeError(f"{self.name} did not start: {line!r} {self.read_log()}")
            self.gossip_port, self.rpc_port = int(m.group(1)), int(m.group(2))
        # Wait for the RPC port to answer.
        while True:
            try:
                c = await RPCClient(self.host, self.rpc_port).connect(1.0)
                await c.close()
                return
            except (OSError, TimeoutError, ConnectionError):
                if self.proc.returncode is not None or loop.time() > deadline:
                    raise RuntimeError(f"{self.name} did not start: {self.read_log()}") from None
                await asyncio.sleep(0.05)

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    async def client(self) -> RPCClient:
        return await RPCClient(self.host, self.rpc_port).connect()

    async def members(self) -> dict[str, str]:
        """name -> status as this agent sees it."""
        c = await self.client()
        try:
            return {m["Name"]: m["Status"] for m in await c.members()}
        finally:
            await c.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.kill9()
                await self.proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
