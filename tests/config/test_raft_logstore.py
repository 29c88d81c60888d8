"""raft_logstore: the backend and WAL segment size reach the Raft library; the rest warns."""

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


def test_verification_is_named_in_a_warning() -> None:
    cfg = load_agent_config(["-dev", "-hcl", "raft_logstore { verification { enabled = true } }"])
    assert any("raft_logstore.verification" in w for w in cfg.warnings), cfg.warnings
