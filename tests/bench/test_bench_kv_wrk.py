"""The wrk Lua scripts, run for real (1 s, 2 connections) against the reference servers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from consulpy.bench import kv
from consulpy.bench.procs import Target, http_json
from consulpy.bench.refservers import start_etcd

RESULT_KEYS = {
    "bench",
    "kind",
    "target",
    "op",
    "clients",
    "ops_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "loadgen_cpu_pct",
    "target_cpu_pct",
    "repeats",
    "duration_s",
    "keys",
    "value_size",
    "spread",
}
RATIO_KEYS = {
    "bench",
    "kind",
    "target",
    "reference",
    "op",
    "clients",
    "ops_per_s_ratio",
    "p99_ratio",
}


def _work(**changes: object) -> kv.Workload:
    base = dict(
        keys=40, value_size=5, spread="random", prefix="t/kv/", raw=False, duration_s=1, seed=1
    )
    base.update(changes)
    return kv.Workload(**base)  # type: ignore[arg-type]


def test_packaged_scripts_are_found(tmp_path: Path) -> None:
    scripts = kv.install_scripts(tmp_path)
    names = {p.name for p in scripts.iterdir()}
    assert {
        "kvbench.lua",
        "consul_put.lua",
        "consul_get.lua",
        "etcd_put.lua",
        "etcd_get.lua",
    } <= names


def test_main_prints_well_formed_json_lines(aiohttp_ref: Target, capsys) -> None:
    addr = aiohttp_ref.addrs[0]
    code = kv.main(
        [
            "-http-addr",
            addr,
            "--reference",
            "aiohttp",
            "--clients",
            "2",
            "--duration",
            "1",
            "--repeats",
            "1",
            "--keys",
            "30",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    results = [x for x in lines if x["kind"] == "result"]
    ratios = [x for x in lines if x["kind"] == "ratio"]
    assert len(lines) == len(results) + len(ratios)
    assert {(r["target"], r["op"]) for r in results} == {
        ("consulpy", "put"),
        ("consulpy", "get"),
        ("aiohttp", "put"),
        ("aiohttp", "get"),
    }
    for r in results:
        assert set(r) == RESULT_KEYS
        assert r["bench"] == "kv" and r["clients"] == 2 and r["repeats"] == 1
        assert r["errors"] == 0
        assert r["ops_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["loadgen_cpu_pct"] > 0
    # CPU is known for what the benchmark started, not for an agent it was pointed at.
    assert all((r["target_cpu_pct"] is None) == (r["target"] == "consulpy") for r in results)
    assert {(q["reference"], q["op"]) for q in ratios} == {("aiohttp", "put"), ("aiohttp", "get")}
    for q in ratios:
        assert set(q) == RATIO_KEYS and q["target"] == "consulpy"
        assert q["ops_per_s_ratio"] > 0 and q["p99_ratio"] > 0
    assert "ops/s" in out.err and "consulpy/aiohttp" in out.err
    # The keys the benchmark wrote into somebody else's agent are gone again.
    assert http_json(f"http://{addr}/v1/kv/bench/kv/0")[0] == 404


def test_put_writes_the_value_and_get_finds_it(aiohttp_ref: Target, tmp_path: Path) -> None:
    scripts = kv.install_scripts(tmp_path)
    work = _work(spread="sequential", raw=True)
    put = kv.run_wrk(scripts, aiohttp_ref, "put", 2, work, 1, tmp_path)
    assert put.errors == 0 and put.ops_per_s > 0
    # Sequential spread over 40 keys from two threads wrote every key, with `size` bytes.
    for i in range(work.keys):
        status, body = http_json(f"http://{aiohttp_ref.addrs[0]}/v1/kv/{work.key(i)}?raw")
        assert (status, body) == (200, work.value().decode())
    for raw in (True, False):
        get = kv.run_wrk(scripts, aiohttp_ref, "get", 2, _work(raw=raw), 2, tmp_path)
        assert get.errors == 0 and get.ops_per_s > 0


def test_missing_keys_are_counted_as_errors(aiohttp_ref: Target, tmp_path: Path) -> None:
    scripts = kv.install_scripts(tmp_path)
    run = kv.run_wrk(scripts, aiohttp_ref, "get", 2, _work(prefix="never/written/"), 1, tmp_path)
    assert run.errors > 0
    assert run.ops_per_s == 0


def test_bad_script_argument_fails_loudly(aiohttp_ref: Target, tmp_path: Path) -> None:
    scripts = kv.install_scripts(tmp_path)
    with pytest.raises(RuntimeError, match="spread must be random or sequential"):
        kv.run_wrk(scripts, aiohttp_ref, "put", 1, _work(spread="diagonal"), 1, tmp_path)


def test_etcd_scripts_against_a_single_member(tmp_path: Path) -> None:
    etcd = start_etcd(1, tmp_path)
    try:
        scripts = kv.install_scripts(tmp_path)
        # Keys of 9..10 bytes and a 5-byte value exercise every base64 padding case.
        work = _work(prefix="k/", keys=200, spread="sequential")
        kv.preload(etcd, work)
        get = kv.run_wrk(scripts, etcd, "get", 2, work, 1, tmp_path)
        assert get.errors == 0 and get.ops_per_s > 0  # the Lua keys match Python's base64
        missing = kv.run_wrk(scripts, etcd, "get", 2, _work(prefix="nope/"), 1, tmp_path)
        assert missing.errors > 0 and missing.ops_per_s == 0
        written = _work(prefix="w/", value_size=7, spread="sequential")  # thread 0 starts at w/0
        put = kv.run_wrk(scripts, etcd, "put", 2, written, 1, tmp_path)
        assert put.errors == 0 and put.ops_per_s > 0
        assert put.target_cpu_pct is not None and put.target_cpu_pct > 0
        key = base64.b64encode(b"w/0").decode()
        status, body = http_json(f"http://{etcd.addrs[0]}/v3/kv/range", {"key": key})
        assert status == 200 and isinstance(body, dict)
        assert base64.b64decode(body["kvs"][0]["value"]) == b"v" * 7
    finally:
        etcd.stop()
