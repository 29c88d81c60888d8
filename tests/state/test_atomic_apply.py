"""Applying a log entry changes the state completely or not at all, and the same log gives the
same state on every replay (compared with `state_digest`).

The commands here are built by hand, as an older version (or anything bypassing the
endpoints' validation) could have logged them: the FSM must survive them identically.
"""

from __future__ import annotations

from typing import Any

from consulpy.state import commands as C
from consulpy.state.digest import state_digest
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import check_row, service_row

S1 = "11111111-1111-1111-1111-111111111111"


class Log:
    """An in-memory log applied to a store as Raft would: every entry, in order."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes]] = []
        self.store = StateStore()
        self.fsm = FSM(self.store)

    def apply(self, cmd: dict[str, Any]) -> Any:
        index = len(self.entries) + 1
        data = C.encode(cmd)
        self.entries.append((index, data))
        return self.fsm.apply(index, data)


def replay(entries: list[tuple[int, bytes]], store: StateStore | None = None) -> list[Any]:
    fsm = FSM(store if store is not None else StateStore())
    return [fsm.apply(index, data) for index, data in entries]


def _register_c1(log: Log) -> None:
    assert (
        log.apply(
            C.register(
                {
                    "Node": "c1",
                    "Address": "127.0.0.1",
                    "Checks": [check_row(Node="c1", CheckID="serfHealth", Status="passing")],
                },
                ts=1.0,
            )
        )
        is True
    )


def _check_write(log: Log, check_id: str) -> Any:
    return log.apply(
        C.register(
            {
                "Node": "c1",
                "Address": "127.0.0.1",
                "SkipNodeUpdate": True,
                "Checks": [check_row(Node="c1", CheckID=check_id, Status="passing")],
            },
            ts=2.0,
        )
    )


def test_command_failing_half_way_leaves_no_trace() -> None:
    """The txn's KV op applies, then the service op fails inside the table code after the
    row was stored (no `Service` name): the whole entry is undone."""
    log = Log()
    _register_c1(log)
    before = state_digest(log.store, with_indexes=False)
    row = service_row(ID="p1", Service="p1")
    del row["Service"]
    bad = C.txn(
        [
            {"KV": {"Verb": "set", "Key": "first", "Value": b"x"}},
            {"Service": {"Verb": "set", "Node": "c1", "Service": row}},
        ],
        ts=1.5,
    )
    result = log.apply(bad)
    assert is_error(result) and "KeyError" in result["Error"], result
    assert log.store.catalog.service("c1", "p1") is None
    assert log.store.catalog.services_by_name.get("p1") is None
    assert log.store.kv.get("first") is None
    assert state_digest(log.store, with_indexes=False) == before
    assert replay(log.entries)[-1] == result
    assert _check_write(log, "web") is True


def test_logged_int_connect_service_does_not_break_later_writes() -> None:
    """An entry an older version logged (`Connect: 1`, refused by today's endpoints) applies
    the same way on every replay, and check writes on its node keep working."""
    log = Log()
    _register_c1(log)
    bad = C.txn(
        [
            {
                "Service": {
                    "Verb": "set",
                    "Node": "c1",
                    "Service": service_row(ID="p1", Service="p1", Connect=1),
                }
            },
        ],
        ts=1.5,
    )
    first = log.apply(bad)
    assert _check_write(log, "web") is True
    assert log.store.catalog.check("c1", "web") is not None
    live = state_digest(log.store)
    replayed = StateStore()
    assert replay(log.entries, replayed)[-2] == first
    assert state_digest(replayed) == live


def test_txn_kv_op_with_null_key_fails_the_same_way_on_replay() -> None:
    log = Log()
    _register_c1(log)
    results = [
        log.apply(C.kv("set", "a", b"1", ts=1.0)),
        log.apply(C.txn([{"KV": {"Verb": "set", "Key": None, "Value": b"x"}}], ts=1.0)),
        log.apply(C.txn([{"KV": {"Verb": "set", "Key": "b", "Value": None}}], ts=1.0)),
        log.apply({"t": C.KV, "verb": "set"}),  # fields missing: raises inside the handler
        log.apply(C.kv("set", "c", b"3", ts=1.0)),
    ]
    assert results[0] is True and results[-1] is True
    assert is_error(results[3])
    live = state_digest(log.store)
    assert replay(log.entries)[1:] == results
    again = StateStore()
    replay(log.entries, again)
    assert state_digest(again) == live


def test_refused_command_changes_nothing_even_after_partial_work() -> None:
    """A handler that fails half-way (the second check names a service that is not there)
    leaves the first check out too."""
    log = Log()
    _register_c1(log)
    before = state_digest(log.store, with_indexes=False)
    result = log.apply(
        C.register(
            {
                "Node": "c1",
                "Address": "127.0.0.1",
                "Checks": [
                    check_row(Node="c1", CheckID="ok", Status="passing"),
                    check_row(Node="c1", CheckID="orphan", ServiceID="nope"),
                ],
            },
            ts=2.0,
        )
    )
    assert is_error(result)
    assert log.store.catalog.check("c1", "ok") is None
    assert state_digest(log.store, with_indexes=False) == before


def test_snapshot_plus_tail_replays_to_the_same_digest() -> None:
    log = Log()
    _register_c1(log)
    for i in range(20):
        log.apply(C.kv("set", f"k/{i % 7}", str(i).encode(), ts=float(i)))
        if i % 5 == 0:
            log.apply(C.kv("delete", f"k/{(i + 3) % 7}", ts=float(i)))
    log.apply(C.session_create({"ID": S1, "Node": "c1", "NodeChecks": ["serfHealth"]}, ts=30.0))
    log.apply(C.kv("lock", "held", b"v", session=S1, ts=31.0))
    cut = len(log.entries)
    snapshot = log.store.snapshot()
    log.apply(C.session_destroy(S1, ts=40.0))
    log.apply(C.txn([{"KV": {"Verb": "cas", "Key": "k/1", "Index": 1, "Value": b"z"}}], ts=41))
    log.apply(C.kv("delete-tree", "k/", ts=42.0))
    live = state_digest(log.store)

    restored = StateStore()
    restored.restore(snapshot)
    replay(log.entries[cut:], restored)
    assert state_digest(restored) == live
    full = StateStore()
    replay(log.entries, full)
    assert state_digest(full) == live


def test_digest_ignores_table_order_but_not_content() -> None:
    a, b = Log(), Log()
    a.apply(C.kv("set", "x", b"1", ts=1.0))
    a.apply(C.kv("set", "y", b"2", ts=1.0))
    b.apply(C.kv("set", "y", b"2", ts=1.0))
    b.apply(C.kv("set", "x", b"1", ts=1.0))
    # Same rows, different indexes: equal contents only without the indexes.
    assert state_digest(a.store) != state_digest(b.store)
    a2, b2 = StateStore(), StateStore()
    a2.restore(a.store.snapshot())
    assert state_digest(a2) == state_digest(a.store)
    b2.restore(b.store.snapshot())
    b.apply(C.kv("set", "x", b"other", ts=1.0))
    assert state_digest(b.store, with_indexes=False) != state_digest(b2, with_indexes=False)


def test_integrity_reports_rows_older_versions_let_in() -> None:
    from consulpy.state.integrity import problems

    log = Log()
    _register_c1(log)
    assert problems(log.store) == []
    log.apply(
        C.txn(
            [
                {
                    "Service": {
                        "Verb": "set",
                        "Node": "c1",
                        "Service": service_row(ID="p1", Service="p1", Connect=1, Port="80"),
                    }
                }
            ],
            ts=1.0,
        )
    )
    log.apply(C.session_create({"ID": S1, "Node": "c1", "NodeChecks": []}, ts=2.0))
    log.apply(C.kv("lock", "held", b"v", session=S1, ts=3.0))
    found = problems(log.store)
    assert "service 'p1' on node 'c1': Connect is a int" in found
    assert "service 'p1' on node 'c1': Port is a str" in found
    # A snapshot holding such rows is reported where a server loads it.
    from structlog.testing import capture_logs

    from consulpy.server.raft_applier import FSMStateMachine

    machine = FSMStateMachine(FSM(StateStore()))
    with capture_logs() as logs:
        machine.restore(log.store.snapshot())
    reported = [e["problem"] for e in logs if e.get("event") == "state integrity problem"]
    assert reported == found
