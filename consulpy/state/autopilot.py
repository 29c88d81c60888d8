"""Autopilot configuration: one replicated row, as Consul keeps it in its `autopilot-config`
table. The leader seeds it from the agent's `autopilot` block when the state has none; after
that, `/v1/operator/autopilot/configuration` changes it and every server's autopilot reads it.

The row uses Consul's field names with durations in nanoseconds (ints):
CleanupDeadServers, LastContactThreshold, MaxTrailingLogs, MinQuorum, ServerStabilizationTime,
RedundancyZoneTag, DisableUpgradeMigration, UpgradeVersionTag, CreateIndex, ModifyIndex.
Topic fired on change: ("t", "autopilot_config").
"""

from __future__ import annotations

from typing import Any

from consulpy.state.txn import WriteTxn

Row = dict[str, Any]
TABLE = "autopilot_config"


class AutopilotTable:
    def __init__(self) -> None:
        self.config: Row | None = None

    def set(self, txn: WriteTxn, config: Row, cas: int | None) -> bool:
        """Store `config`; with `cas`, only when the stored row's ModifyIndex equals it (0:
        only when there is no row yet), as Consul's AutopilotCASConfig. False: not stored."""
        old = self.config
        if cas is not None and (old["ModifyIndex"] if old is not None else 0) != cas:
            return False
        row = dict(config)
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index
        self.config = row

        def undo() -> None:
            self.config = old

        txn.on_undo(undo)
        txn.touch(TABLE)
        return True

    # -------------------------------------------------------------- snapshot
    def dump(self) -> Row | None:
        return self.config

    frozen_copy = dump

    def load(self, data: Row | None) -> None:
        self.config = dict(data) if data else None
