"""No setting is silently ignored: every key of the config schema is read somewhere in consulpy
outside the config package, or is on one of the lists of consulpy/config/unused.py (refused,
warned at startup, or honoured by design). Plus what a user sees for listed keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import consulpy
from consulpy.config import ConfigError, deprecated, unused
from consulpy.config.keys import AGENT

ROOT = Path(consulpy.__file__).parent


def _sources_outside_config() -> str:
    return "\n".join(
        p.read_text()
        for p in ROOT.rglob("*.py")
        if p.parent.name != "config" or p.parent.parent != ROOT
    )


def _read_somewhere(path: str, text: str) -> bool:
    """The key's top-level name and its last name both used as an attribute (`.name`) or a
    dict key (`"name"`). A heuristic: generic names (`protocol`, `mode`) can hide an unread
    key, so such keys are listed explicitly when found."""
    parts = path.split(".")
    for part in {parts[0], parts[-1]}:
        name = re.escape(part)
        if re.search(rf"\.{name}\b|[\"']{name}[\"']", text) is None:
            return False
    return True


def test_every_key_is_read_or_listed() -> None:
    text = _sources_outside_config()
    renamed: dict[str, str] = deprecated._RENAMED
    silent = []
    for path in unused.leaf_paths(AGENT):
        target = renamed.get(path, path)
        if unused.classify(path) or unused.classify(target):
            continue
        if not _read_somewhere(target, text):
            silent.append(path)
    assert not silent, (
        "config keys parsed but read nowhere in consulpy and not listed in "
        f"consulpy/config/unused.py: {silent}"
    )


def test_lists_name_real_keys() -> None:
    paths = set(unused.leaf_paths(AGENT))
    entries = [
        *unused.ENTERPRISE_OR_CLOUD,
        *unused.NOT_YET_USED,
        *unused.HONOURED_BY_DESIGN,
        *unused.CONSUMED_BY_CONFIG,
        *unused.REFUSED,
    ]
    stale = [
        e
        for e in entries
        if not (e in paths or (e.endswith(".") and any(p.startswith(e) for p in paths)))
    ]
    assert not stale


def test_startup_warnings_list_ignored_keys(load: Any) -> None:
    cfg = load(
        extra=[
            {
                "telemetry": {"statsd_address": "127.0.0.1:8125", "disable_hostname": True},
                "audit": {"enabled": True},
                "raft_protocol": 3,
                "limits": {"request_limits": {"mode": "disabled"}},
            }
        ]
    )
    text = "\n".join(cfg.warnings)
    assert "telemetry" not in text  # telemetry settings are honoured
    assert "Consul Enterprise / HCP settings are ignored by consulpy: audit" in text
    assert "raft_protocol" not in text  # 3 is what consulpy speaks: honoured, no warning
    assert "request_limits" not in text  # mode = disabled is honoured
    # defaults set nothing: no warning about keys the user did not write
    assert not [w for w in load().warnings if "IGNORED" in w]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"serf_lan_allowed_cidrs": ["10.0.0.0/8"]}, "serf_lan_allowed_cidrs is not supported"),
        (
            {"telemetry": {"statsite_address": "127.0.0.1:8125"}},
            "telemetry.statsite_address is not supported",
        ),
        (
            {"telemetry": {"circonus_api_token": "x"}},
            "telemetry.circonus_api_token is not supported",
        ),
        (
            {"telemetry": {"enable_host_metrics": True}},
            "telemetry.enable_host_metrics is not supported",
        ),
        ({"limits": {"request_limits": {"mode": "enforcing"}}}, "limits.request_limits is not"),
        ({"enable_debug": True}, "enable_debug = true is not supported"),
        ({"raft_protocol": 2}, "raft_protocol version 2 is not supported (only 3)"),
        ({"raft_logstore": {"backend": "rocks"}}, "must be one of 'wal', 'boltdb'"),
        ({"raft_logstore": {"verification": {"enabled": True}}}, "verification is not supp"),
        ({"raft_logstore": {"disable_log_cache": True}}, "disable_log_cache is not supported"),
        ({"raft_logstore": {"wal": {"segment_size_mb": 0}}}, "segment_size_mb"),
        ({"raft_boltdb": {"NoFreelistSync": True}}, "(formerly raft_boltdb.NoFreelistSync)"),
    ],
)
def test_protective_keys_we_cannot_honour_are_refused(
    load: Any, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(extra=[extra])
    assert message in str(info.value)


def test_enable_debug_false_is_honoured_and_dev_mode_loads(load: Any) -> None:
    # false is what consulpy does (no debug endpoints): accepted without a warning.
    cfg = load(extra=[{"enable_debug": False}])
    assert not [w for w in cfg.warnings if "enable_debug" in w]
    # -dev's own default (Consul's dev mode sets it) is not a user setting: it loads.
    assert load("-dev").dev


def test_raft_log_store_settings_that_hold_load_without_warnings(load: Any) -> None:
    cfg = load(
        extra=[
            {
                "raft_logstore": {
                    "backend": "wal",
                    "disable_log_cache": False,
                    "boltdb": {"no_freelist_sync": False},
                },
                "tls": {"https": {"verify_outgoing": True}},
            }
        ]
    )
    assert not [w for w in cfg.warnings if "raft_logstore" in w or "verify_outgoing" in w]
