"""The replicated autopilot configuration row: check-and-set as Consul's AutopilotCASConfig,
Create/ModifyIndex, watches, and a snapshot round trip."""

from __future__ import annotations

from consulpy.server.autopilot import AutopilotConfig, stored_configuration
from consulpy.state import commands as C
from consulpy.state.fsm import FSM
from consulpy.state.store import StateStore
from consulpy.state.watch import WatchSet


def test_cas_indexes_watch_and_snapshot() -> None:
    store = StateStore()
    fsm = FSM(store)
    row = AutopilotConfig().to_row()
    assert fsm.apply_command(3, C.autopilot_set(row, 7, ts=0.0)) is False  # none stored yet
    assert store.autopilot.config is None
    assert fsm.apply_command(4, C.autopilot_set(row, 0, ts=0.0)) is True  # 0: only if absent
    assert fsm.apply_command(5, C.autopilot_set(row, 0, ts=0.0)) is False
    ws = WatchSet()
    index, got = stored_configuration(store, {}, ws)
    assert index == 4 and (got["CreateIndex"], got["ModifyIndex"]) == (4, 4)
    assert ("t", "autopilot_config") in ws.topics  # a blocking read wakes on a change
    changed = dict(row, CleanupDeadServers=False, LastContactThreshold=1_000_000_000)
    assert fsm.apply_command(6, C.autopilot_set(changed, 3, ts=0.0)) is False
    assert store.table_index("autopilot_config") == 4  # a refused cas moves nothing
    assert fsm.apply_command(7, C.autopilot_set(changed, 4, ts=0.0)) is True
    assert fsm.apply_command(8, C.autopilot_set(row, None, ts=0.0)) is True  # unconditional
    assert fsm.apply_command(9, C.autopilot_set(changed, None, ts=0.0)) is True
    index, got = stored_configuration(store, {}, None)
    assert index == 9 and (got["CreateIndex"], got["ModifyIndex"]) == (4, 9)
    config = AutopilotConfig.from_row(got)
    assert config.cleanup_dead_servers is False and config.last_contact_threshold == 1.0
    copy = StateStore()
    copy.restore(store.snapshot())
    assert copy.autopilot.config == store.autopilot.config
    assert copy.table_index("autopilot_config") == 9
