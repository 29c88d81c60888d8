"""The benches added for issue 21 (mem, gossip-sim, all) and kv's rotating target order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from consulpy.bench import gossip_sim, kv, mem
from consulpy.bench.procs import Target

ROOT = Path(__file__).resolve().parents[2]


def test_kv_rotates_the_target_order_so_each_target_holds_each_position() -> None:
    targets = [Target(name=n, api="consul", addrs=[]) for n in ("now", "base", "etcd")]
    orders = [[t.name for t in kv.rotated(targets, r)] for r in range(3)]
    assert orders == [["now", "base", "etcd"], ["base", "etcd", "now"], ["etcd", "now", "base"]]
    for position in range(3):
        assert {o[position] for o in orders} == {"now", "base", "etcd"}


def test_mem_reads_rss_and_peak_of_a_process_and_the_raw_size() -> None:
    m = mem.proc_memory(os.getpid())
    assert m["rss"] > 0 and m["hwm"] >= m["rss"]
    assert m["rss_anon"] > 0 and m["rss_anon"] + m["rss_file"] <= m["rss"]
    assert set(mem.proc_memory(2**22 + 12345).values()) == {0}  # no such process
    work = kv.Workload(10, 100, "sequential", "p/", False, 1, 1)
    assert mem.raw_size(work) == sum(len(f"p/{i}") for i in range(10)) + 10 * 100


def test_gossip_sim_small_pool_forms_converges_and_detects_a_crash() -> None:
    r = gossip_sim.run_pool(12, seed=3, loss=0.01, limit=300.0)
    assert r["members"] == 12
    assert r["formation_s"] is not None and r["convergence_s"] is not None
    # memberlist's order of events: suspected, then declared dead, then dead everywhere
    assert r["detection_first_suspect_s"] is not None
    assert r["detection_first_suspect_s"] <= r["detection_first_dead_s"]
    assert r["detection_first_dead_s"] <= r["detection_all_dead_s"]
    assert r["udp_packets_per_member_s"] > 0 and r["push_pull_bytes_per_exchange"] > 0


def test_gossip_sim_can_start_from_a_converged_pool() -> None:
    r = gossip_sim.run_pool(12, seed=4, loss=0.0, limit=300.0, formation=False)
    assert r["formation_s"] is None
    assert r["settle_s"] == 0.0  # nothing queued: the pool formed "long ago"
    assert r["convergence_s"] is not None and r["detection_all_dead_s"] is not None


def _bench_all(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "consulpy", "bench", "all", *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return proc, json.loads(out.read_text())


def test_bench_all_writes_one_summary_with_each_bench_results(tmp_path: Path) -> None:
    proc, summary = _bench_all(tmp_path, "--quick", "--only", "gossip-sim")
    assert proc.returncode == 0, proc.stderr
    assert summary["crashed"] == []
    (record,) = summary["benches"]
    assert record["bench"] == "gossip-sim" and record["status"] == "ok"
    assert record["results"][0]["members"] == 50


def test_bench_all_fails_only_when_a_bench_crashes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from consulpy.bench import all as bench_all

    broken = bench_all.Step("gossip-sim", ("--members", "1"), (), (), 60)
    monkeypatch.setattr(bench_all, "STEPS", (broken,))
    out = tmp_path / "summary.json"
    code = bench_all.main(["--quick", "--json", str(out)])
    summary = json.loads(out.read_text())
    assert code == 1
    assert summary["crashed"] == ["gossip-sim"]
    assert summary["benches"][0]["reason"] == "exited with 2"
    assert any("pool size" in line for line in summary["benches"][0]["stderr_tail"])
