"""`consulpy dev-cluster` finds its configs as package data, from any directory: from a source
tree on PYTHONPATH, and from a wheel installed into a virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIND = (
    "from consulpy.devcluster.cluster import check_configs, find_configs_dir;"
    "from consulpy.devcluster.topology import TWO_DCS;"
    "d = find_configs_dir(); check_configs(d, TWO_DCS); print(d)"
)


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONSULPY_DEV_DIR")}
    full.update(env)
    return subprocess.run(
        argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=300, check=False
    )


def test_configs_found_from_another_directory(tmp_path: Path) -> None:
    out = _run([sys.executable, "-c", FIND], tmp_path, PYTHONPATH=str(ROOT))
    assert out.returncode == 0, out.stderr
    found = Path(out.stdout.strip())
    assert found == (ROOT / "configs").resolve()
    status = _run(
        [sys.executable, "-m", "consulpy", "dev-cluster", "status", f"-data-dir={tmp_path / 'd'}"],
        tmp_path,
        PYTHONPATH=str(ROOT),
    )
    assert "No dev cluster in" in status.stdout + status.stderr


def test_an_explicit_configs_dir_overrides(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "configs", mine)
    code = (
        "from consulpy.devcluster.cluster import find_configs_dir;"
        f"print(find_configs_dir({str(mine)!r}))"
    )
    out = _run([sys.executable, "-c", code], tmp_path, PYTHONPATH=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == mine.resolve()
    code = (
        "from consulpy.devcluster.cluster import find_configs_dir;"
        f"find_configs_dir({str(tmp_path)!r})"
    )
    out = _run([sys.executable, "-c", code], tmp_path, PYTHONPATH=str(ROOT))
    assert out.returncode == 1 and "no server.hcl in the configs directory" in out.stderr


@pytest.mark.slow
def test_configs_ship_in_the_wheel(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "configs", src / "configs", ignore=ignore)
    shutil.copytree(ROOT / "consulpy", src / "consulpy", symlinks=True, ignore=ignore)
    pip = [sys.executable, "-m", "pip"]
    built = _run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(tmp_path.glob("consulpy-*.whl"))
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    installed = _run(
        [python, "-m", "pip", "install", "--no-deps", "--ignore-installed", str(wheel)], tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _run([python, "-c", FIND], elsewhere)
    assert out.returncode == 0, out.stderr
    found = Path(out.stdout.strip())
    assert str(found).startswith(str(venv)), found
    assert (found / "services" / "api.hcl").is_file()
    assert (found / "intentions").is_dir()
    assert (found / "dc2" / "config-entries" / "20-resolver-api.hcl").is_file()  # -dc2's
    status = _run(
        [str(venv / "bin" / "consulpy"), "dev-cluster", "status", f"-data-dir={elsewhere / 'd'}"],
        elsewhere,
    )
    assert "No dev cluster in" in status.stdout + status.stderr
