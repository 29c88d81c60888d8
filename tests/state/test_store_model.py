"""Property tests: the state store, driven through the FSM by random KV / session / txn
commands, agrees with a deliberately simple model after every step; snapshots round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.state import commands as C
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import check_row

KEYS = ["a", "a/b", "b"]
NODE = "n1"


@dataclass
class Row:
    value: bytes
    flags: int
    session: str
    lock_index: int
    create: int
    modify: int


@dataclass
class Model:
    kv: dict[str, Row] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # id -> behavior
    delays: dict[str, float] = field(default_factory=dict)

    # Each operation returns the result the FSM should return.
    def put(self, idx: int, key: str, value: bytes, flags: int, session: str, lock: int) -> None:
        old = self.kv.get(key)
        new = Row(value, flags, session, lock, old.create if old else idx, idx)
        if old and (old.value, old.flags, old.session, old.lock_index) == (
            value,
            flags,
            session,
            lock,
        ):
            return
        self.kv[key] = new

    def apply_kv(
        self,
        idx: int,
        verb: str,
        key: str,
        value: bytes,
        flags: int,
        index: int,
        session: str,
        now: float,
    ) -> Any:
        old = self.kv.get(key)
        if verb == "set":
            self.put(idx, key, value, flags, old.session if old else "", 0)
            return True
        if verb == "cas":
            if (index == 0 and old is None) or (old is not None and index and old.modify == index):
                self.put(idx, key, value, flags, old.session if old else "", 0)
                return True
            return False
        if verb == "lock":
            if session not in self.sessions:
                return "error"
            if self.delays.get(key, 0) > now:
                return False
            if old is None:
                self.put(idx, key, value, flags, session, 1)
                return True
            if old.session == session:
                self.put(idx, key, value, flags, session, old.lock_index)
                return True
            if old.session:
                return False
            self.put(idx, key, value, flags, session, old.lock_index + 1)
            return True
        if verb == "unlock":
            if old is None or old.session != session:
                return False
            self.put(idx, key, value, flags, "", old.lock_index)
            return True
        if verb == "delete":
            self.kv.pop(key, None)
            return True
        if verb == "delete-cas":
            if old is None:
                return True
            if old.modify != index:
                return False
            del self.kv[key]
            return True
        if verb == "delete-tree":
            for k in [k for k in self.kv if k.startswith(key)]:
                del self.kv[k]
            return True
        raise AssertionError(verb)

    def destroy(self, idx: int, sid: str, now: float, lock_delay_s: float) -> None:
        behavior = self.sessions.pop(sid, None)
        if behavior is None:
            return
        for key, row in list(self.kv.items()):
            if row.session == sid:
                if behavior == "delete":
                    del self.kv[key]
                else:
                    self.put(idx, key, row.value, row.flags, "", row.lock_index)
                if lock_delay_s > 0:
                    self.delays[key] = now + lock_delay_s


kv_cmd = st.tuples(
    # Lock verbs are listed twice: lock/unlock/re-lock chains are where the rules are subtle.
    st.sampled_from(
        ["set", "cas", "lock", "lock", "unlock", "unlock", "delete", "delete-cas", "delete-tree"]
    ),
    st.sampled_from([*KEYS, "", "a/"]),
    st.sampled_from([b"", b"x", b"yy"]),
    st.integers(0, 2),
    st.integers(0, 12),
    st.sampled_from(["s1", "s2", "s3"]),
)
step = st.one_of(
    st.tuples(st.just("kv"), kv_cmd),
    st.tuples(
        st.just("create"),
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["release", "delete"]),
    ),
    st.tuples(st.just("destroy"), st.sampled_from(["s1", "s2", "s3"])),
    st.tuples(st.just("txn"), st.lists(kv_cmd, min_size=1, max_size=4)),
    st.tuples(st.just("tick"), st.integers(1, 30)),
)

SESSION_IDS = {
    "s1": "11111111-1111-1111-1111-111111111111",
    "s2": "22222222-2222-2222-2222-222222222222",
    "s3": "33333333-3333-3333-3333-333333333333",
}
LOCK_DELAY_S = 5.0


def _entry_tuple(e: Any) -> tuple[Any, ...]:
    return (e.key, e.value, e.flags, e.session, e.lock_index, e.create_index, e.modify_index)


def _model_tuple(key: str, r: Row) -> tuple[Any, ...]:
    return (key, r.value, r.flags, r.session, r.lock_index, r.create, r.modify)


def _cmd(now: float, c: dict[str, Any]) -> dict[str, Any]:
    c["ts"] = now
    return c


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=40))
def test_store_matches_model(steps: list[Any]) -> None:
    store = StateStore()
    fsm = FSM(store)
    model = Model()
    idx = 1
    now = 1000.0
    fsm.apply(
        idx,
        C.encode(
            _cmd(
                now,
                C.register(
                    {
                        "Node": NODE,
                        "Address": "127.0.0.1",
                        "Checks": [check_row(Node=NODE, CheckID="serfHealth", Status="passing")],
                    },
                    ts=0.0,
                ),
            )
        ),
    )
    for sess in ("s1", "s2"):  # most runs need live sessions to exercise locks
        steps.insert(0, ("create", sess, "release" if sess == "s1" else "delete"))
    for kind, *args in steps:
        idx += 1
        if kind == "tick":
            now += args[0]
            idx -= 1
            continue
        if kind == "kv":
            verb, key, value, flags, index, sess = args[0]
            sid = SESSION_IDS[sess]
            result = fsm.apply(
                idx, C.encode(_cmd(now, C.kv(verb, key, value, flags, index, sid, ts=0.0)))
            )
            expected = model.apply_kv(idx, verb, key, value, flags, index, sid, now)
            if expected == "error":
                assert is_error(result)
            else:
                assert result == expected, (verb, key)
        elif kind == "create":
            sess, behavior = args
            sid = SESSION_IDS[sess]
            result = fsm.apply(
                idx,
                C.encode(
                    _cmd(
                        now,
                        C.session_create(
                            {
                                "ID": sid,
                                "Node": NODE,
                                "LockDelay": int(LOCK_DELAY_S * 1e9),
                                "Behavior": behavior,
                                "NodeChecks": ["serfHealth"],
                            },
                            ts=0.0,
                        ),
                    )
                ),
            )
            if sid in model.sessions:
                assert is_error(result)
            else:
                assert result == sid
                model.sessions[sid] = behavior
        elif kind == "destroy":
            sid = SESSION_IDS[args[0]]
            fsm.apply(idx, C.encode(_cmd(now, C.session_destroy(sid, ts=0.0))))
            model.destroy(idx, sid, now, LOCK_DELAY_S)
        elif kind == "txn":
            ops = []
            for verb, key, value, flags, index, sess in args[0]:
                ops.append(
                    {
                        "KV": {
                            "Verb": verb,
                            "Key": key,
                            "Value": value,
                            "Flags": flags,
                            "Index": index,
                            "Session": SESSION_IDS[sess],
                        }
                    }
                )
            before = {k: Row(**vars(r)) for k, r in model.kv.items()}
            delays_before = dict(model.delays)
            ok = True
            for verb, key, value, flags, index, sess in args[0]:
                if not key and verb != "delete-tree":
                    ok = False
                    continue
                outcome = model.apply_kv(
                    idx, verb, key, value, flags, index, SESSION_IDS[sess], now
                )
                if outcome is not True:
                    ok = False
            result = fsm.apply(idx, C.encode(_cmd(now, C.txn(ops, ts=0.0))))
            if not ok:
                model.kv = before
                model.delays = delays_before
                assert result["Errors"], result
            else:
                assert result["Errors"] is None, result
        # The whole KV table agrees with the model after every step.
        got = [_entry_tuple(e) for e in store.kv.list("")]
        want = [_model_tuple(k, model.kv[k]) for k in sorted(model.kv)]
        assert got == want
        assert set(store.sessions.rows) == set(model.sessions)
        held = {s: set(keys) for s, keys in store.kv.held.items()}
        want_held: dict[str, set[str]] = {}
        for key, row in model.kv.items():
            if row.session:
                want_held.setdefault(row.session, set()).add(key)
        assert held == want_held
        # Indexes never go backwards for a prefix, and never exceed the last applied index.
        for prefix in ("", "a/", "b"):
            index, _ = store.kv_list(None, prefix)
            assert index <= store.last_index
    # A snapshot restores to an identical store.
    restored = StateStore()
    restored.restore(store.snapshot())
    assert [_entry_tuple(e) for e in restored.kv.list("")] == [
        _entry_tuple(e) for e in store.kv.list("")
    ]
    assert restored.indexes == store.indexes
    assert restored.last_index == store.last_index
    assert sorted(s.dump() for s in restored.sessions.list()) == sorted(
        s.dump() for s in store.sessions.list()
    )
    assert restored.kv.lock_delays == store.kv.lock_delays
    assert restored.snapshot() == store.snapshot()
