"""The interval scheduler: stagger, spacing after each run, no overlap, clean stop."""

from __future__ import annotations

import asyncio
import random

from consulpy.agent.checks import IntervalRunner
from tests.checks.support import Recorder, ZeroRandom, fast
from tests.helpers import eventually

# asyncio may fire a timer up to its clock resolution early; bounds allow for that.
SLACK = 0.001


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class ScriptedProbe:
    """Returns scripted results; records when each run started and ended (loop time)."""

    def __init__(self, results: list[tuple[str, str]], hold: float = 0.0) -> None:
        self.results = results
        self.hold = hold
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.active = 0
        self.max_active = 0
        self.closed = False

    async def run(self) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        self.starts.append(loop.time())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)  # the probe's own work, not synchronisation
            result = self.results[min(len(self.starts) - 1, len(self.results) - 1)]
            if isinstance(result, Exception):
                raise result
            return result
        finally:
            self.active -= 1
            self.ends.append(loop.time())

    async def close(self) -> None:
        self.closed = True


def defn(**extra):
    return fast({"Name": "x", "TCP": "127.0.0.1:1", "Interval": "50ms", **extra})


async def test_first_run_is_staggered_by_the_rng_then_spaced_after_each_run() -> None:
    probe = ScriptedProbe([("passing", "ok")], hold=0.03)
    rec = Recorder()
    runner = IntervalRunner("x", defn(), rec, probe, rng=FixedRandom(0.5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await runner.start()
    try:
        await eventually(lambda: len(probe.ends) >= 4, interval=0.01)
    finally:
        await runner.stop()
    assert probe.starts[0] - started >= 0.5 * 0.05 - SLACK
    for end, next_start in zip(probe.ends, probe.starts[1:], strict=False):
        assert next_start - end >= 0.05 - SLACK
    assert probe.max_active == 1
    assert probe.closed


async def test_results_pass_through_the_threshold_filter() -> None:
    probe = ScriptedProbe(
        [("passing", "a"), ("critical", "b"), ("critical", "c"), ("passing", "d")]
    )
    rec = Recorder()
    runner = IntervalRunner("x", defn(FailuresBeforeCritical=2), rec, probe, rng=ZeroRandom())
    await runner.start()
    try:
        await rec.wait(lambda u: [s for _, s, _ in u] == ["passing", "critical", "passing"])
    finally:
        await runner.stop()
    assert rec.updates == [("x", "passing", "a"), ("x", "critical", "c"), ("x", "passing", "d")]


async def test_a_probe_bug_is_reported_and_the_schedule_goes_on() -> None:
    probe = ScriptedProbe([RuntimeError("boom"), ("passing", "ok")])
    rec = Recorder()
    runner = IntervalRunner("x", defn(), rec, probe, rng=ZeroRandom())
    await runner.start()
    try:
        await rec.count(2)
    finally:
        await runner.stop()
    assert rec.updates[0] == ("x", "critical", "check failed: boom")
    assert rec.updates[1] == ("x", "passing", "ok")


async def test_start_and_stop_are_idempotent_and_restartable() -> None:
    probe = ScriptedProbe([("passing", "ok")])
    rec = Recorder()
    runner = IntervalRunner("x", defn(), rec, probe, rng=ZeroRandom())
    await runner.stop()  # before start: nothing to do
    await runner.start()
    await runner.start()
    await eventually(lambda: len(probe.ends) >= 1, interval=0.01)
    await runner.stop()
    await runner.stop()
    runs = len(probe.starts)
    assert all(t.get_name() != "check:x" for t in asyncio.all_tasks())
    await runner.start()
    try:
        await eventually(lambda: len(probe.starts) > runs, interval=0.01)
    finally:
        await runner.stop()
    assert probe.max_active == 1


async def test_update_callback_errors_do_not_stop_the_check() -> None:
    calls: list[str] = []

    def update(check_id: str, status: str, output: str) -> None:
        calls.append(output)
        raise ValueError("agent bug")

    probe = ScriptedProbe([("passing", "1"), ("passing", "2"), ("passing", "3")])
    runner = IntervalRunner("x", defn(), update, probe, rng=ZeroRandom())
    await runner.start()
    try:
        await eventually(lambda: len(calls) >= 3, interval=0.01)
    finally:
        await runner.stop()
