"""The event loop setting: auto picks uvloop when installed, a named loop is honoured or refused."""

from __future__ import annotations

import asyncio

import pytest

from consulpy.config import ConfigError, load_agent_config
from consulpy.util import eventloop
from consulpy.util.eventloop import ENV, EventLoopError, loop_factory, loop_name, resolve


def test_auto_prefers_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert resolve() == ("uvloop" if eventloop.uvloop_available() else "asyncio")
    monkeypatch.setattr(eventloop, "uvloop_available", lambda: False)
    assert resolve() == "asyncio"


def test_environment_decides_auto_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "asyncio")
    assert resolve("auto") == "asyncio"
    assert resolve("") == "asyncio"
    if eventloop.uvloop_available():
        assert resolve("uvloop") == "uvloop"  # the config key/flag wins over the environment
    monkeypatch.setenv(ENV, "tokio")
    with pytest.raises(EventLoopError, match="tokio"):
        resolve()


def test_named_uvloop_without_it_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "uvloop_available", lambda: False)
    with pytest.raises(EventLoopError, match="not installed"):
        resolve("uvloop")
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        load_agent_config(["-dev", "-event-loop=uvloop"])


def test_config_key_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_agent_config(["-dev"]).event_loop == "auto"
    assert load_agent_config(["-dev", "-event-loop=asyncio"]).event_loop == "asyncio"
    assert load_agent_config(["-dev", '-hcl=event_loop = "ASYNCIO"']).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="must be one of auto, uvloop, asyncio"):
        load_agent_config(["-dev", "-event-loop=trio"])


def test_run_uses_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def kind() -> str:
        return loop_name(asyncio.get_running_loop())

    monkeypatch.delenv(ENV, raising=False)
    assert eventloop.run(kind(), "asyncio") == "asyncio"
    if eventloop.uvloop_available():
        assert eventloop.run(kind(), "uvloop") == "uvloop"
        loop = loop_factory("uvloop")()
        try:
            assert loop_name(loop) == "uvloop"
        finally:
            loop.close()


def test_run_closes_the_coroutine_on_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "nope")

    async def never() -> None:
        raise AssertionError("not run")

    coro = never()
    with pytest.raises(EventLoopError):
        eventloop.run(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


CHILDREN = """
import asyncio, sys
import consulpy  # before grpc, as every consulpy entry point imports it
import grpc.aio
from consulpy.util.eventloop import run

async def main():
    server = grpc.aio.server()
    server.add_insecure_port("127.0.0.1:0")
    await server.start()
    codes = []
    for _ in range(5):
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        codes.append(await p.wait())
    await server.stop(None)
    print(codes)

run(main(), sys.argv[1])
"""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_children_of_a_grpc_process_run_no_grpc_fork_handlers(loop: str) -> None:
    """uvloop spawns with fork(), which runs gRPC's fork handlers in the child (a child
    once died inside them); consulpy turns them off unless the operator set
    GRPC_ENABLE_FORK_SUPPORT, so a child only execs."""
    import os
    import subprocess
    import sys

    if loop == "uvloop" and not eventloop.uvloop_available():
        pytest.skip("uvloop is not installed")
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    out = subprocess.run(
        [sys.executable, "-c", CHILDREN, loop],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=os.getcwd(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[0, 0, 0, 0, 0]"
    assert "fork" not in out.stderr, out.stderr[-2000:]
