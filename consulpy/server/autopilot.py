"""The autopilot configuration as the servers use it: a typed view of the replicated row
(state/autopilot.py), its defaults, and the HTTP/API rendering.

Where the values come from, as in Consul: the leader seeds the row from the agent's
`autopilot` block the first time it leads a state without one (`seed_if_missing`); after
that only `Operator.AutopilotSetConfiguration` changes it, and every threshold autopilot
applies (health, promotion, dead-server cleanup) is read from `Server.autopilot_config()`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from consulpy.state import commands as C
from consulpy.state.autopilot import TABLE
from consulpy.util.durations import format_duration_ns

if TYPE_CHECKING:
    from consulpy.server.server import Server
    from consulpy.state.store import StateStore
    from consulpy.state.watch import WatchSet

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class AutopilotConfig:
    """Durations in seconds. The defaults are Consul's (`api.NewAutopilotConfiguration`):
    a PUT body is decoded on top of them, so a field it omits goes back to its default."""

    cleanup_dead_servers: bool = True
    last_contact_threshold: float = 0.2
    max_trailing_logs: int = 250
    min_quorum: int = 0
    server_stabilization_time: float = 10.0
    redundancy_zone_tag: str = ""
    disable_upgrade_migration: bool = False
    upgrade_version_tag: str = ""

    def to_row(self) -> dict[str, Any]:
        return {
            "CleanupDeadServers": self.cleanup_dead_servers,
            "LastContactThreshold": round(self.last_contact_threshold * NS),
            "MaxTrailingLogs": self.max_trailing_logs,
            "MinQuorum": self.min_quorum,
            "ServerStabilizationTime": round(self.server_stabilization_time * NS),
            "RedundancyZoneTag": self.redundancy_zone_tag,
            "DisableUpgradeMigration": self.disable_upgrade_migration,
            "UpgradeVersionTag": self.upgrade_version_tag,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AutopilotConfig:
        return cls(
            cleanup_dead_servers=bool(row["CleanupDeadServers"]),
            last_contact_threshold=int(row["LastContactThreshold"]) / NS,
            max_trailing_logs=int(row["MaxTrailingLogs"]),
            min_quorum=int(row["MinQuorum"]),
            server_stabilization_time=int(row["ServerStabilizationTime"]) / NS,
            redundancy_zone_tag=str(row.get("RedundancyZoneTag") or ""),
            disable_upgrade_migration=bool(row.get("DisableUpgradeMigration")),
            upgrade_version_tag=str(row.get("UpgradeVersionTag") or ""),
        )

    @classmethod
    def from_settings(cls, settings: Any) -> AutopilotConfig:
        """From the agent's `autopilot` config block (an object with the same field names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def stored_configuration(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """The read behind Operator.AutopilotGetConfiguration: the stored row, None until the
    leader has seeded it."""
    if ws is not None:
        ws.add(("t", TABLE))
    return store.table_index(TABLE), store.autopilot.config


def render(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as Consul's HTTP API shows it (durations as Go strings)."""
    out = dict(row)
    for key in ("LastContactThreshold", "ServerStabilizationTime"):
        out[key] = format_duration_ns(int(row[key]))
    return out


async def seed_if_missing(server: Server) -> None:
    """On gaining leadership: store the agent's configured values when the replicated state
    has no autopilot configuration yet (cas 0: never over one that exists)."""
    if server.store.autopilot.config is None:
        await server.propose(C.autopilot_set(server.autopilot_seed.to_row(), 0, ts=server.now()))
