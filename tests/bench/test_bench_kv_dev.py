"""`--spawn dev`: the benchmark starts a real consulpy dev agent, drives it, and stops it."""

from __future__ import annotations

from pathlib import Path

from consulpy.bench import kv
from tests.bench.proctools import gone


def test_spawned_dev_agent_serves_the_scripts_and_is_stopped(tmp_path: Path) -> None:
    target = kv.spawn_dev(tmp_path)
    try:
        assert target.name == "consulpy-dev" and target.api == "consul"
        assert target.addrs[0].startswith("127.0.0.1:")
        work = kv.Workload(
            keys=20,
            value_size=16,
            spread="random",
            prefix="bench/kv/",
            raw=False,
            duration_s=1,
            seed=1,
        )
        kv.preload(target, work)
        scripts = kv.install_scripts(tmp_path)
        for op in ("put", "get"):
            run = kv.run_wrk(scripts, target, op, 2, work, 1, tmp_path)
            assert run.errors == 0 and run.ops_per_s > 0
            assert run.target_cpu_pct is not None and run.target_cpu_pct > 0
    finally:
        target.stop()
    agent = target.procs[0]
    assert agent.popen.returncode is not None
    assert gone(agent.pid)
