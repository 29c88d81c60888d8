"""TTL checks: pushes, expiry, output truncation, and TTL updates aimed at other checks."""

from __future__ import annotations

import pytest

from consulpy.agent.checks import CheckError, make_runner
from tests.checks.support import Recorder, fast


async def test_update_applies_and_expiry_turns_critical_with_last_output() -> None:
    rec = Recorder()
    runner = make_runner("web-ttl", fast({"Name": "t", "TTL": "150ms"}), rec)
    await runner.start()
    try:
        runner.ttl_update("passing", "all good")
        assert rec.updates == [("web-ttl", "passing", "all good")]  # synchronous
        status, output = await rec.count(2)
        assert status == "critical"
        assert output == "TTL expired (last output before timeout follows): all good"
    finally:
        await runner.stop()


async def test_expiry_without_any_output() -> None:
    rec = Recorder()
    runner = make_runner("t", fast({"Name": "t", "TTL": "50ms"}), rec)
    await runner.start()
    try:
        assert await rec.first() == ("critical", "TTL expired")
    finally:
        await runner.stop()


async def test_updates_keep_resetting_the_timer() -> None:
    rec = Recorder()
    runner = make_runner("t", fast({"Name": "t", "TTL": "30s"}), rec)
    await runner.start()
    try:
        runner.ttl_update("warning", "w")
        first_deadline = runner.expires_at
        runner.ttl_update("warning", "w")  # same status and output: still delivered
        assert rec.statuses == ["warning", "warning"]
        assert runner.expires_at is not None and runner.expires_at >= first_deadline
    finally:
        await runner.stop()
    assert runner.expires_at is None


async def test_long_output_is_cut_like_consul() -> None:
    rec = Recorder()
    runner = make_runner("t", fast({"Name": "t", "TTL": "30s", "OutputMaxSize": 10}), rec)
    runner.ttl_update("passing", "0123456789abcdef")
    assert rec.last == ("passing", "0123456789 ... (captured 10 of 16 bytes)")
    await runner.stop()


async def test_agent_wide_output_cap_applies() -> None:
    rec = Recorder()
    runner = make_runner("t", fast({"Name": "t", "TTL": "30s"}), rec, check_output_max_size=4)
    runner.ttl_update("passing", "abcdef")
    assert rec.last[1] == "abcd ... (captured 4 of 6 bytes)"


async def test_invalid_status_is_refused() -> None:
    runner = make_runner("t", fast({"Name": "t", "TTL": "30s"}), Recorder())
    with pytest.raises(CheckError, match="Invalid check status: 'ok'") as info:
        runner.ttl_update("ok", "")
    assert info.value.kind == "status"


async def test_ttl_update_on_other_checks_is_refused() -> None:
    runner = make_runner(
        "web-http",
        fast({"Name": "h", "HTTP": "http://127.0.0.1:1/", "Interval": "1s"}),
        Recorder(),
    )
    with pytest.raises(CheckError, match=r'^CheckID "web-http" does not have associated TTL$'):
        runner.ttl_update("passing", "")
