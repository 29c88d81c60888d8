"""`consulpy bench kv` as a command: options, summaries, and cleanup on Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from consulpy.bench import kv
from consulpy.bench.procs import Target, wait_until
from tests.bench.proctools import children, gone

ROOT = Path(__file__).resolve().parents[2]


def test_dev_agent_command_line() -> None:
    argv = kv.dev_agent_argv(8501, 8301, 8302, 8303)
    assert argv[:5] == [sys.executable, "-m", "consulpy", "agent", "-dev"]
    assert set(argv[5:]) == {
        "-node=bench",
        "-http-port=8501",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-server-port=8301",
        "-serf-lan-port=8302",
        "-serf-wan-port=8303",
    }


def test_wrk_command_line(tmp_path: Path) -> None:
    target = Target(name="etcd1", api="etcd", addrs=["127.0.0.1:2379"])
    work = kv.Workload(
        keys=7, value_size=3, spread="sequential", prefix="p/", raw=True, duration_s=4, seed=9
    )
    argv = kv.wrk_argv(tmp_path, target, "get", 32, work, 11)
    assert argv[:5] == [kv.WRK, "-t2", "-c32", "-d4s", "--timeout=10s"]
    assert argv[5] == f"-s{tmp_path / 'etcd_get.lua'}"
    assert argv[6] == "http://127.0.0.1:2379/"
    assert argv[8:] == [
        "keys=7",
        "spread=sequential",
        "size=3",
        "prefix=p/",
        "threads=2",
        "seed=11",
        "raw=1",
    ]
    assert kv.wrk_argv(tmp_path, target, "put", 1, work, 1)[1:3] == ["-t1", "-c1"]


def test_options_are_validated(capsys) -> None:
    for bad in (
        ["--reference", "redis"],
        ["--clients", "0"],
        ["--ops", "delete"],
        ["--spawn", "dev", "-http-addr", "127.0.0.1:1"],
        ["--prefix", ""],
        ["--prefix", "a b"],
    ):
        with pytest.raises(SystemExit) as exc:
            kv.build_parser().parse_args(bad)
        assert exc.value.code == 2
    args = kv.build_parser().parse_args(["--reference", "etcd,etcd1,etcd", "--clients", "8,1,8"])
    assert args.reference == ["etcd", "etcd1"] and args.clients == [8, 1]
    assert args.duration == 10 and args.repeats == 3 and args.ops == ["put", "get"]


def test_https_agent_address_is_refused(capsys) -> None:
    assert kv.main(["-http-addr", "https://127.0.0.1:8501", "--duration", "1"]) == 2
    assert "only http://" in capsys.readouterr().err


def test_summary_takes_medians_and_sums_errors() -> None:
    work = kv.Workload(
        keys=1, value_size=1, spread="random", prefix="p/", raw=False, duration_s=1, seed=1
    )
    runs = [
        kv.Run(
            ops_per_s=100.0,
            p50_ms=1.0,
            p99_ms=9.0,
            errors=0,
            loadgen_cpu_pct=10.0,
            target_cpu_pct=None,
        ),
        kv.Run(
            ops_per_s=300.0,
            p50_ms=3.0,
            p99_ms=7.0,
            errors=2,
            loadgen_cpu_pct=30.0,
            target_cpu_pct=None,
        ),
        kv.Run(
            ops_per_s=200.0,
            p50_ms=2.0,
            p99_ms=8.0,
            errors=0,
            loadgen_cpu_pct=20.0,
            target_cpu_pct=None,
        ),
    ]
    line = kv.summarize("consulpy-dev", "put", 32, runs, work)
    assert (line["ops_per_s"], line["p50_ms"], line["p99_ms"]) == (200.0, 2.0, 8.0)
    assert line["errors"] == 2 and line["loadgen_cpu_pct"] == 20.0 and line["repeats"] == 3
    assert line["target_cpu_pct"] is None


def test_ratios_are_subject_over_reference() -> None:
    results = [
        {"target": "consulpy-dev", "op": "put", "clients": 1, "ops_per_s": 50.0, "p99_ms": 4.0},
        {"target": "etcd1", "op": "put", "clients": 1, "ops_per_s": 100.0, "p99_ms": 2.0},
        {"target": "etcd1", "op": "get", "clients": 1, "ops_per_s": 100.0, "p99_ms": 2.0},
    ]
    (ratio,) = kv.ratio_lines(results, "consulpy-dev", ["etcd1"])
    assert ratio["reference"] == "etcd1" and ratio["op"] == "put"
    assert ratio["ops_per_s_ratio"] == 0.5 and ratio["p99_ratio"] == 2.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_everything_started(aiohttp_ref: Target, tmp_path: Path, sig) -> None:
    err = tmp_path / "bench.err"
    with open(err, "wb") as err_file:
        bench = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consulpy",
                "bench",
                "kv",
                "-http-addr",
                aiohttp_ref.addrs[0],
                "--reference",
                "etcd1",
                "--clients",
                "1",
                "--duration",
                "60",
                "--repeats",
                "1",
                "--keys",
                "5",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err_file,
        )
    try:
        # Once the first wrk run is going, the bench has two children: etcd and wrk.
        wait_until(lambda: len(children(bench.pid)) == 2, 60, "etcd and wrk to run")
        started = children(bench.pid)
        bench.send_signal(sig)
        out, _ = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 130, err.read_text()
    assert out == b""
    assert "interrupted" in err.read_text()
    for pid in started:
        wait_until(lambda pid=pid: gone(pid), 30, f"child {pid} to exit")
    assert os.path.exists(f"/proc/{aiohttp_ref.procs[0].pid}")  # not ours to stop
