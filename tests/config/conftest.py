"""Shared helpers for the config tests: writing files and loading configurations."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from consulpy.config import AgentConfig, load_agent_config


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text) -> path: create a file under tmp_path (subdirs allowed)."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


@pytest.fixture
def load(data_dir: str):
    """load(*argv, extra=None) with a valid data_dir, so tests only state what they test."""

    def _load(*argv: str, extra: list[dict[str, Any]] | None = None) -> AgentConfig:
        return load_agent_config(["-data-dir", data_dir, *argv], extra_sources=extra or [])

    return _load


def settings(cfg: AgentConfig) -> dict[str, Any]:
    """The model minus where-it-came-from fields, for comparing two loads."""
    out = dataclasses.asdict(cfg)
    out.pop("config_files")
    out.pop("warnings")
    out.pop("config_paths")
    return out
