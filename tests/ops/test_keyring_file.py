"""disable_keyring_file: with it the gossip keyring stays in memory, without it the agent
keeps the keys in <data_dir>/serf/local.keyring."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from tests.ops.procs import BASE, start


def _keyring_after_start(data_dir: Path, *extra: str) -> bool:
    key = base64.b64encode(os.urandom(32)).decode()
    agent = start(
        *BASE, "-server", "-bootstrap", f"-data-dir={data_dir}", f"-encrypt={key}", *extra
    )
    try:
        return (data_dir / "serf" / "local.keyring").exists()
    finally:
        agent.stop()


def test_keyring_file_is_kept_by_default(tmp_path: Path) -> None:
    assert _keyring_after_start(tmp_path / "default")


def test_disable_keyring_file_writes_no_keyring(tmp_path: Path) -> None:
    assert not _keyring_after_start(tmp_path / "off", "-disable-keyring-file")
