"""Script checks: run `Args` as a child process, map its exit code, keep its output's tail.

The child gets its own process group so that a timeout (or the check being stopped) kills
everything it started, not just the first process; we always reap it before the next run so
two instances of one check never overlap.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from contextlib import suppress

from consulpy.agent.checks.definition import NS, CheckDefinition
from consulpy.agent.checks.output import TailBuffer
from consulpy.agent.checks.runner import Result
from consulpy.agent.checks.status import CRITICAL, PASSING, WARNING
from consulpy.util.durations import format_duration_ns


def status_for_exit(code: int) -> str:
    if code == 0:
        return PASSING
    if code == 1:
        return WARNING
    return CRITICAL


def _start_error(args: tuple[str, ...], exc: OSError) -> str:
    """Go's os/exec wording for a command that could not start."""
    name = args[0]
    if os.sep not in name and shutil.which(name) is None:
        return f'exec: "{name}": executable file not found in $PATH'
    reason = (exc.strerror or str(exc)).lower()
    return f"fork/exec {name}: {reason}"


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ScriptProbe:
    def __init__(self, definition: CheckDefinition, *, output_max_size: int) -> None:
        self.args = definition.args
        self.timeout = definition.timeout
        self.output_max_size = output_max_size

    async def close(self) -> None:
        return None

    async def run(self) -> Result:
        buf = TailBuffer(self.output_max_size)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return CRITICAL, _start_error(self.args, exc)
        assert proc.stdout is not None
        reader = asyncio.create_task(self._pump(proc.stdout, buf))
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    code = await proc.wait()
                    await reader
            except TimeoutError:
                _kill_group(proc.pid)
                await proc.wait()
                msg = f"Timed out ({format_duration_ns(round(self.timeout * NS))}) running check"
                captured = buf.captured_text()
                return CRITICAL, f"{msg}\n\n{captured}" if captured else msg
        finally:
            if proc.returncode is None:  # cancelled: stop the whole group, then reap
                _kill_group(proc.pid)
                with suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())
            if not reader.done():
                reader.cancel()
                with suppress(asyncio.CancelledError):
                    await reader
        return status_for_exit(code), buf.captured_text()

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, buf: TailBuffer) -> None:
        while chunk := await stream.read(65536):
            buf.write(chunk)
