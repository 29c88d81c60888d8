"""The autopilot configuration's LastContactThreshold and MaxTrailingLogs decide a server's
Healthy flag in /v1/operator/autopilot/health (the Raft node is a stand-in with fixed peer
figures)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from consulpy.raft.config import RaftConfig
from consulpy.server.autopilot import AutopilotConfig
from consulpy.server.operator import autopilot_health


class _Node:
    id = "a"

    def __init__(self, contact: float, behind: int) -> None:
        self.config = RaftConfig(id="a")  # heartbeats every 100 ms
        self._contact = contact
        self._behind = behind

    def stats(self) -> dict[str, Any]:
        return {"last_log_index": 1000, "term": 2}

    def peer_stats(self) -> dict[str, dict[str, Any]]:
        return {"b": {"last_contact": self._contact, "match_index": 1000 - self._behind}}

    def leader(self) -> tuple[str, str]:
        return "a", "127.0.0.1:1"

    def configuration(self) -> list[dict[str, str]]:
        return [{"id": "a", "address": "127.0.0.1:1"}, {"id": "b", "address": "127.0.0.1:2"}]


def _follower_healthy(limits: AutopilotConfig, contact: float, behind: int) -> bool:
    server = SimpleNamespace(
        raft=SimpleNamespace(node=_Node(contact, behind)),
        store=SimpleNamespace(catalog=SimpleNamespace(nodes={})),
        autopilot_config=lambda: limits,
        serf_names=dict,
    )
    health = autopilot_health(server, {"a": "alive", "b": "alive"})  # type: ignore[arg-type]
    return bool(health["Servers"][1]["Healthy"])


def test_max_trailing_logs_is_honoured() -> None:
    assert _follower_healthy(AutopilotConfig(), 0.05, 250)
    assert not _follower_healthy(AutopilotConfig(), 0.05, 251)
    assert _follower_healthy(AutopilotConfig(max_trailing_logs=1000), 0.05, 900)


def test_last_contact_threshold_is_honoured() -> None:
    # default 200 ms, plus one heartbeat period (100 ms) of measurement lag
    assert _follower_healthy(AutopilotConfig(), 0.25, 0)
    assert not _follower_healthy(AutopilotConfig(), 0.4, 0)
    assert _follower_healthy(AutopilotConfig(last_contact_threshold=2.0), 1.5, 0)
    assert not _follower_healthy(AutopilotConfig(last_contact_threshold=0.05), 0.2, 0)
