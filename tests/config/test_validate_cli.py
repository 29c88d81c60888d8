"""`consulpy validate` run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "consulpy", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "consul.d"
    conf.mkdir()
    (conf / "00-base.hcl").write_text(f'data_dir = "{tmp_path}"\nserver = true\n')
    (conf / "10-cluster.json").write_text(json.dumps({"bootstrap_expect": 3, "retry_join": ["a"]}))
    (conf / "notes.txt").write_text("ignored")
    return conf


def test_valid_directory_exits_zero(good_dir):
    result = run(str(good_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Configuration is valid!"


def test_quiet_prints_nothing(good_dir):
    for flag in ("-quiet", "--quiet"):
        result = run(flag, str(good_dir))
        assert (result.returncode, result.stdout) == (0, "")


def test_files_and_dirs_together(good_dir, tmp_path):
    extra = tmp_path / "extra.hcl"
    extra.write_text('node_meta {\n role = "db"\n}\n')
    assert run(str(good_dir), str(extra)).returncode == 0


def test_bad_value_exits_one_naming_file_and_key(good_dir):
    bad = good_dir / "20-bad.hcl"
    bad.write_text('ports {\n  http = "abc"\n}\n')
    result = run(str(good_dir))
    assert result.returncode == 1
    assert f'Error parsing {bad}: ports.http: expected an integer, got "abc"' in result.stderr
    assert "Configuration is valid!" not in result.stdout


def test_cross_setting_error_exits_one(tmp_path):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"data_dir": str(tmp_path), "bootstrap_expect": 3}))
    result = run(str(conf))
    assert result.returncode == 1
    assert "bootstrap_expect: 'bootstrap_expect > 0' requires 'server = true'" in result.stderr


def test_data_dir_is_required_as_in_consul_validate(tmp_path):
    conf = tmp_path / "c.hcl"
    conf.write_text("server = true\n")
    result = run(str(conf))
    assert result.returncode == 1
    assert "data_dir cannot be empty" in result.stderr


def test_config_format_for_files_without_extension(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text(json.dumps({"data_dir": str(tmp_path)}))
    assert run(str(conf)).returncode == 1
    assert run("-config-format=json", str(conf)).returncode == 0
    assert run("--config-format", "hcl", str(conf)).returncode == 0  # HCL reads JSON too
    assert run("-config-format=yaml", str(conf)).returncode == 1


def test_no_arguments_and_missing_path(tmp_path):
    result = run()
    assert result.returncode == 1 and "at least one config file" in result.stderr
    missing = run(str(tmp_path / "missing.hcl"))
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr
