"""Finding and parsing config files: `-config-file` paths and `-config-dir` directories.

As in Consul, a directory contributes its `*.json` and `*.hcl` files (all files when a format
is forced) in lexical order of their names, without descending into subdirectories; other files
are skipped with a warning. A file named directly must end in `.json` or `.hcl` unless a format
is forced. An empty file contributes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from consulpy.config.errors import ConfigError
from consulpy.config.hcl import parse_hcl, parse_json


@dataclass(frozen=True)
class ConfigSource:
    """One source: where it came from and its settings. As read from disk the data is plain
    parsed HCL/JSON; `load_config_files` returns it type-checked and normalised."""

    name: str
    data: dict[str, Any]
    lenient_durations: bool = field(default=False, compare=False)


def format_of(path: str) -> str | None:
    if path.endswith(".json"):
        return "json"
    if path.endswith(".hcl"):
        return "hcl"
    return None


def read_sources(
    paths: list[str], config_format: str | None = None
) -> tuple[list[ConfigSource], list[str]]:
    """Parse every file named by `paths` in order; returns sources and skip warnings.

    All files are tried so that one run reports every broken file; ConfigError lists them.
    """
    if config_format not in (None, "", "hcl", "json"):
        raise ConfigError("-config-format must be either 'hcl' or 'json'")
    forced = config_format or None
    sources: list[ConfigSource] = []
    warnings: list[str] = []
    errors: list[str] = []
    for path in paths:
        try:
            for file_path, fmt in _files_of(path, forced, warnings):
                source = _parse_file(file_path, fmt)
                if source is not None:
                    sources.append(source)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)
    return sources, warnings


def _files_of(path: str, forced: str | None, warnings: list[str]) -> list[tuple[str, str]]:
    try:
        is_dir = os.path.isdir(path)
        exists = os.path.exists(path)
    except OSError as exc:
        raise ConfigError(f"Error reading {path}: {exc.strerror}") from None
    if not exists:
        raise ConfigError(f"Error reading {path}: no such file or directory")
    if not is_dir:
        fmt = forced or format_of(path)
        if fmt is None:
            raise ConfigError(
                f"Error reading {path}: unknown extension; must be .hcl or .json, "
                "or -config-format must be set"
            )
        return [(path, fmt)]
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise ConfigError(f"Error reading {path}: {exc.strerror}") from None
    found: list[tuple[str, str]] = []
    for name in names:
        full = os.path.join(path, name)
        if os.path.isdir(full):
            continue
        fmt = forced or format_of(name)
        if fmt is None:
            warnings.append(
                f"skipping file {full}, extension must be .hcl or .json, "
                "or config format must be set"
            )
            continue
        found.append((full, fmt))
    return found


def _parse_file(path: str, fmt: str) -> ConfigSource | None:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"Error reading {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"Error parsing {path}: the file is not UTF-8 text") from None
    if not text.strip():
        return None
    data = parse_json(text, path) if fmt == "json" else parse_hcl(text, path)
    return ConfigSource(path, data)


def parse_fragment(text: str, name: str) -> ConfigSource:
    """An inline HCL fragment (`-hcl '...'`)."""
    return ConfigSource(name, parse_hcl(text, name) if text.strip() else {})
