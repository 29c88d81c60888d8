"""Targeted rules of the store: lock-delay, session behaviours, tombstones, watches."""

from __future__ import annotations

from typing import Any

import pytest

from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import check_row
from consulpy.state.watch import WatchSet

S1 = "11111111-1111-1111-1111-111111111111"
S2 = "22222222-2222-2222-2222-222222222222"


class Harness:
    def __init__(self) -> None:
        self.store = StateStore()
        self.fsm = FSM(self.store)
        self.index = 0
        self.now = 1000.0
        self.apply(
            C.register(
                {
                    "Node": "n1",
                    "Address": "127.0.0.1",
                    "Checks": [
                        check_row(Node="n1", CheckID="serfHealth", Status="passing"),
                        check_row(Node="n1", CheckID="web", Status="passing"),
                    ],
                },
                ts=0.0,
            )
        )

    def apply(self, cmd: dict[str, Any]) -> Any:
        self.index += 1
        cmd["ts"] = self.now
        return self.fsm.apply(self.index, C.encode(cmd))

    def session(
        self,
        sid: str,
        behavior: str = "release",
        delay_s: float = 15,
        checks: list[str] | None = None,
    ) -> None:
        result = self.apply(
            C.session_create(
                {
                    "ID": sid,
                    "Node": "n1",
                    "LockDelay": int(delay_s * 1e9),
                    "Behavior": behavior,
                    "NodeChecks": checks if checks is not None else ["serfHealth"],
                },
                ts=0.0,
            )
        )
        assert result == sid


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_lock_delay_blocks_acquire_but_not_writes(h: Harness) -> None:
    h.session(S1, delay_s=10)
    h.session(S2)
    assert h.apply(C.kv("lock", "k", b"v", session=S1, ts=0.0)) is True
    assert h.apply(C.session_destroy(S1, ts=0.0)) is True
    entry = h.store.kv.get("k")
    assert entry is not None and entry.session == "" and entry.lock_index == 1
    assert h.apply(C.kv("lock", "k", b"v2", session=S2, ts=0.0)) is False
    assert h.apply(C.kv("set", "k", b"plain", ts=0.0)) is True
    h.now += 10.5
    assert h.apply(C.kv("lock", "k", b"v3", session=S2, ts=0.0)) is True
    # The plain write reset LockIndex to the request's 0 (Consul's behaviour), so this is 1.
    assert h.store.kv.get("k").lock_index == 1  # type: ignore[union-attr]


def test_lock_delay_capped_at_60s(h: Harness) -> None:
    h.session(S1, delay_s=600)
    h.session(S2)
    h.apply(C.kv("lock", "k", session=S1, ts=0.0))
    h.apply(C.session_destroy(S1, ts=0.0))
    h.now += 61
    assert h.apply(C.kv("lock", "k", session=S2, ts=0.0)) is True


def test_delete_behavior_removes_held_keys_with_tombstones(h: Harness) -> None:
    h.session(S1, behavior="delete", delay_s=0)
    h.apply(C.kv("set", "svc/a", b"x", ts=0.0))
    h.apply(C.kv("lock", "svc/leader", b"me", session=S1, ts=0.0))
    h.apply(C.session_destroy(S1, ts=0.0))
    assert h.store.kv.get("svc/leader") is None
    index, entries = h.store.kv_list(None, "svc/")
    assert [e.key for e in entries] == ["svc/a"]
    assert index == h.index  # the tombstone keeps the prefix index from going back


def test_critical_check_invalidates_session(h: Harness) -> None:
    h.session(S1, checks=["serfHealth", "web"])
    h.apply(C.kv("lock", "k", session=S1, ts=0.0))
    h.apply(
        C.register(
            {
                "Node": "n1",
                "Address": "127.0.0.1",
                "SkipNodeUpdate": True,
                "Checks": [check_row(Node="n1", CheckID="web", Status="critical")],
            },
            ts=0.0,
        )
    )
    assert h.store.sessions.get(S1) is None
    assert h.store.kv.get("k").session == ""  # type: ignore[union-attr]


def test_session_needs_registered_node_and_healthy_checks(h: Harness) -> None:
    r = h.apply(C.session_create({"ID": S1, "Node": "ghost", "NodeChecks": []}, ts=0.0))
    assert is_error(r) and r["Error"] == "Missing node registration"
    r = h.apply(C.session_create({"ID": S1, "Node": "n1", "NodeChecks": ["nope"]}, ts=0.0))
    assert r["Error"] == "Missing check 'nope' registration"
    h.apply(
        C.register(
            {
                "Node": "n1",
                "Address": "127.0.0.1",
                "SkipNodeUpdate": True,
                "Checks": [check_row(Node="n1", CheckID="web", Status="critical")],
            },
            ts=0.0,
        )
    )
    r = h.apply(C.session_create({"ID": S1, "Node": "n1", "NodeChecks": ["web"]}, ts=0.0))
    assert r["Error"] == "Check 'web' is in critical state"


def test_node_deregistration_destroys_its_sessions(h: Harness) -> None:
    h.session(S1)
    h.apply(C.kv("lock", "k", session=S1, ts=0.0))
    h.apply(C.deregister({"Node": "n1"}, ts=0.0))
    assert h.store.sessions.get(S1) is None
    assert h.store.kv.get("k").session == ""  # type: ignore[union-attr]


def test_identical_write_keeps_modify_index(h: Harness) -> None:
    h.apply(C.kv("set", "k", b"same", flags=3, ts=0.0))
    first = h.store.kv.get("k").modify_index  # type: ignore[union-attr]
    h.apply(C.kv("set", "k", b"same", flags=3, ts=0.0))
    assert h.store.kv.get("k").modify_index == first  # type: ignore[union-attr]


def test_failed_txn_changes_nothing_and_wakes_nobody(h: Harness) -> None:
    h.apply(C.kv("set", "a", b"1", ts=0.0))
    before = h.store.snapshot()
    fired: list[int] = []
    ws = WatchSet()
    h.store.kv_list(ws, "")
    h.store.watches.register(ws.topics, lambda: fired.append(1))
    result = h.apply(
        C.txn(
            [
                {"KV": {"Verb": "set", "Key": "a", "Value": b"2"}},
                {"KV": {"Verb": "delete-tree", "Key": ""}},
                {"KV": {"Verb": "check-index", "Key": "a", "Index": 999}},
            ],
            ts=0.0,
        )
    )
    assert result["Errors"][0]["OpIndex"] == 2
    assert "doesn't exist" in result["Errors"][0]["What"]
    # last_index moves (the entry was applied) but the state does not.
    after = StateStore()
    after.restore(h.store.snapshot())
    reference = StateStore()
    reference.restore(before)
    assert [e.dump() for e in after.kv.list("")] == [e.dump() for e in reference.kv.list("")]
    assert fired == []


def test_watches_wake_only_for_related_keys(h: Harness) -> None:
    fired: dict[str, int] = {"key": 0, "prefix": 0, "missing": 0}
    for name, read in (
        ("key", lambda ws: h.store.kv_get(ws, "app/x")),
        ("prefix", lambda ws: h.store.kv_list(ws, "app/")),
        ("missing", lambda ws: h.store.kv_get(ws, "nothing")),
    ):
        ws = WatchSet()
        read(ws)
        h.store.watches.register(ws.topics, lambda n=name: fired.__setitem__(n, fired[n] + 1))
    h.apply(C.kv("set", "other", b"1", ts=0.0))
    assert fired == {"key": 0, "prefix": 0, "missing": 0}
    h.apply(C.kv("set", "app/y", b"1", ts=0.0))
    assert fired == {"key": 0, "prefix": 1, "missing": 0}
    h.apply(C.kv("set", "app/x", b"1", ts=0.0))
    assert fired == {"key": 1, "prefix": 2, "missing": 0}


def test_tombstone_reap_only_up_to_index(h: Harness) -> None:
    h.apply(C.kv("set", "a/1", b"1", ts=0.0))
    h.apply(C.kv("delete", "a/1", ts=0.0))
    first_stone = h.index
    h.apply(C.kv("set", "a/2", b"1", ts=0.0))
    h.apply(C.kv("delete", "a/2", ts=0.0))
    assert h.apply(C.tombstone_reap(first_stone, ts=0.0)) == 1
    assert list(h.store.kv.tombstones) == ["a/2"]


def test_unknown_command_does_not_stop_the_fsm(h: Harness) -> None:
    result = h.apply({"t": "from-the-future"})
    assert is_error(result)
    assert h.store.last_index == h.index
