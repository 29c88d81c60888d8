"""raft_logstore: the backend and WAL segment size reach the Raft library; the rest is refused
when set (tests/config/test_config_walk.py)."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError, load_agent_config


def test_defaults_to_the_wal() -> None:
    cfg = load_agent_config(["-dev"])
    assert cfg.raft_logstore.backend == "wal" and cfg.raft_logstore.segment_size_mb == 64


def test_boltdb_selects_the_previous_sqlite_store_and_sizes_are_read() -> None:
    cfg = load_agent_config(
        ["-dev", "-hcl", 'raft_logstore { backend = "boltdb"\n wal { segment_size_mb = 8 } }']
    )
    assert cfg.raft_logstore.backend == "sqlite" and cfg.raft_logstore.segment_size_mb == 8


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"raft_logstore\.backend"):
        load_agent_config(["-dev", "-hcl", 'raft_logstore { backend = "rocks" }'])
