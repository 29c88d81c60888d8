"""Script checks: exit codes, combined output, truncation, timeouts that kill the whole group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from consulpy.agent.checks import CheckError, make_runner
from tests.checks.support import Recorder, ZeroRandom, fast
from tests.helpers import eventually

PY = sys.executable


async def run_once(args: list[str], **extra) -> tuple[str, str]:
    rec = Recorder()
    defn = fast({"Name": "s", "Args": args, "Interval": "10s", **extra})
    runner = make_runner("s", defn, rec, enable_script_checks=True, rng=ZeroRandom())
    await runner.start()
    try:
        return await rec.first()
    finally:
        await runner.stop()


@pytest.mark.parametrize(("code", "status"), [(0, "passing"), (1, "warning"), (2, "critical")])
async def test_exit_codes(code: int, status: str) -> None:
    script = f"import sys; print('out'); print('err', file=sys.stderr); sys.exit({code})"
    got, output = await run_once([PY, "-c", script])
    assert got == status
    assert sorted(output.split()) == ["err", "out"]  # stdout and stderr, combined


async def test_killed_by_signal_is_critical() -> None:
    status, _ = await run_once([PY, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    assert status == "critical"


async def test_long_output_keeps_the_tail_with_a_note() -> None:
    script = "import sys; sys.stdout.write('x' * 100 + 'TAIL')"
    status, output = await run_once([PY, "-c", script], OutputMaxSize=10)
    assert status == "passing"
    assert output == "Captured 10 of 104 bytes\n...\nxxxxxxTAIL"


async def test_missing_executable() -> None:
    status, output = await run_once(["consulpy-no-such-command-xyz"])
    assert (status, output) == (
        "critical",
        'exec: "consulpy-no-such-command-xyz": executable file not found in $PATH',
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    status, output = await run_once([PY, "-c", script], Timeout="500ms")
    assert status == "critical"
    assert output == "Timed out (500ms) running check\n\nstarted\n"
    grandchild = int(pidfile.read_text())
    await eventually(lambda: not _alive(grandchild), interval=0.01)


async def test_stop_kills_a_running_script(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    rec = Recorder()
    defn = fast({"Name": "s", "Args": [PY, "-c", script], "Interval": "10s"})
    runner = make_runner("s", defn, rec, enable_script_checks=True, rng=ZeroRandom())
    await runner.start()
    await eventually(lambda: pidfile.exists() and pidfile.read_text() != "", interval=0.01)
    pid = int(pidfile.read_text())
    await runner.stop()
    await runner.stop()  # idempotent
    assert not _alive(pid)
    assert rec.updates == []


def test_scripts_refused_unless_enabled() -> None:
    defn = fast({"Name": "s", "Args": ["true"], "Interval": "1s"})
    with pytest.raises(CheckError) as info:
        make_runner("s", defn, Recorder())
    assert info.value.kind == "scripts_disabled"
    assert str(info.value) == (
        "Scripts are disabled on this agent from remote calls; to enable, configure "
        "'enable_script_checks' to true"
    )
    with pytest.raises(CheckError, match="'enable_local_script_checks' to true"):
        make_runner("s", defn, Recorder(), source="local")


def test_docker_and_os_service_are_refused_clearly() -> None:
    docker = fast({"Name": "d", "Args": ["true"], "DockerContainerID": "c1", "Interval": "1s"})
    with pytest.raises(CheckError, match="Docker engine") as info:
        make_runner("d", docker, Recorder(), enable_script_checks=True)
    assert info.value.kind == "unsupported"
    svc = fast({"Name": "o", "OSService": "sshd", "Interval": "1s"})
    with pytest.raises(CheckError, match="systemd"):
        make_runner("o", svc, Recorder())


async def test_output_that_is_not_utf8_is_replaced() -> None:
    script = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe done')"
    status, output = await run_once([PY, "-c", script])
    assert (status, output) == ("passing", "ok \ufffd\ufffd done")
