"""`--tree` and `--acl-variant`: the same kind of consulpy from another source tree, or with
ACLs on and a scoped token, started beside the subject for one same-run comparison."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from consulpy.bench import kv

ROOT = Path(__file__).resolve().parents[2]


def test_tree_and_acl_options_are_validated(tmp_path: Path, capsys) -> None:
    for bad in (
        ["--spawn", "dev", "--tree", "base"],
        ["--spawn", "dev", "--tree", f"a b={ROOT}"],
        ["--spawn", "dev", "--tree", f"acl={ROOT}"],
        ["--spawn", "dev", "--tree", f"old={tmp_path}"],
    ):
        with pytest.raises(SystemExit) as exc:
            kv.build_parser().parse_args(bad)
        assert exc.value.code == 2
    args = kv.build_parser().parse_args(["--spawn", "cluster", "--tree", f"old={ROOT}"])
    assert args.tree == [("old", ROOT)]
    assert kv.main(["--tree", f"old={ROOT}", "--duration", "1"]) == 2
    assert "need --spawn" in capsys.readouterr().err
    assert kv.main(["--acl-variant", "--duration", "1"]) == 2


def _put(addr: str, key: str, token: str) -> int:
    headers = {"X-Consul-Token": token} if token else {}
    req = urllib.request.Request(
        f"http://{addr}/v1/kv/{key}", data=b"v", method="PUT", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read()) is True
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_acl_variant_enforces_default_deny_and_drives_its_scoped_token(tmp_path: Path) -> None:
    target = kv.spawn_dev(tmp_path, kv.Variant("acl", acl=True))
    try:
        assert target.name == "consulpy-dev-acl" and target.token
        addr = target.addrs[0]
        assert _put(addr, "bench/kv/x", "") == 403  # anonymous: default deny
        assert _put(addr, "bench/kv/private/x", target.token) == 403  # the deeper deny
        work = kv.Workload(
            keys=10,
            value_size=8,
            spread="random",
            prefix="bench/kv/",
            raw=False,
            duration_s=1,
            seed=1,
        )
        kv.preload(target, work)  # with the target's own token
        scripts = kv.install_scripts(tmp_path)
        assert f"token={target.token}" in kv.wrk_argv(scripts, target, "put", 1, work, 1)
        for op in ("put", "get"):
            run = kv.run_wrk(scripts, target, op, 2, work, 1, tmp_path)
            assert run.errors == 0 and run.ops_per_s > 0
    finally:
        target.stop()


def test_tree_variant_runs_that_source_tree(tmp_path: Path) -> None:
    target = kv.spawn_dev(tmp_path, kv.Variant("same", ROOT))
    try:
        assert target.name == "consulpy-dev-same" and target.token is None
        assert Path(f"/proc/{target.procs[0].pid}/cwd").resolve() == ROOT
        assert _put(target.addrs[0], "bench/kv/x", "") == 200
    finally:
        target.stop()


def test_telemetry_off_variant_records_nothing(tmp_path: Path) -> None:
    target = kv.spawn_dev(tmp_path, kv.Variant("notelemetry", telemetry=False))
    try:
        assert target.name == "consulpy-dev-notelemetry"
        addr = target.addrs[0]
        assert _put(addr, "bench/kv/x", "") == 200
        with urllib.request.urlopen(f"http://{addr}/v1/agent/metrics", timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["Samples"] == [] and doc["Counters"] == [] and doc["Gauges"] == []
        url = f"http://{addr}/v1/agent/metrics?format=prometheus"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.read() == b""
            assert "not enabled" in resp.headers["X-Consul-Reason"]
    finally:
        target.stop()
    args = kv.build_parser().parse_args(["--spawn", "dev", "--telemetry-off-variant"])
    assert args.telemetry_off_variant
    assert kv.main(["--telemetry-off-variant", "--duration", "1"]) == 2
