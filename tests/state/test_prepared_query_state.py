"""The prepared-queries table through the FSM: cross-row rules against the applied state,
deletion with the session in the same transaction, snapshot round trip, replay, watches."""

from __future__ import annotations

from typing import Any

from consulpy.state import commands as C
from consulpy.state import prepared_queries as pq
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import check_row
from consulpy.state.watch import WatchSet

S1 = "11111111-1111-1111-1111-111111111111"
Q1 = "aaaaaaaa-0000-0000-0000-000000000001"
Q2 = "aaaaaaaa-0000-0000-0000-000000000002"
Q3 = "aaaaaaaa-0000-0000-0000-000000000003"


def definition(query_id: str, **fields: Any) -> dict[str, Any]:
    return pq.normalize(dict(fields, ID=query_id))


def commands() -> list[dict[str, Any]]:
    """A node, a session, a static query, a template and a session-bound query."""
    return [
        C.register(
            {
                "Node": "n1",
                "Address": "10.0.0.1",
                "Checks": [check_row(Node="n1", CheckID="serfHealth", Status="passing")],
            },
            ts=0.0,
        ),
        C.session_create(
            {"ID": S1, "Node": "n1", "LockDelay": 0, "NodeChecks": ["serfHealth"]}, ts=0.0
        ),
        C.prepared_query("create", definition(Q1, Name="web-v1", Service={"Service": "web"}), ts=0),
        C.prepared_query(
            "create",
            definition(
                Q2,
                Name="geo-",
                Template={"Type": "name_prefix_match", "Regexp": "^geo-(.+)$"},
                Service={"Service": "${match(1)}"},
            ),
            ts=0,
        ),
        C.prepared_query("create", definition(Q3, Session=S1, Service={"Service": "db"}), ts=0),
    ]


def replay(cmds: list[dict[str, Any]]) -> tuple[StateStore, list[Any]]:
    store = StateStore()
    fsm = FSM(store)
    results = [fsm.apply(i, C.encode(cmd)) for i, cmd in enumerate(cmds, start=1)]
    return store, results


def test_create_stamps_indexes_and_resolves_by_id_name_and_template() -> None:
    store, results = replay(commands())
    assert results[2:] == [Q1, Q2, Q3]
    row = store.prepared_queries.get(Q1)
    assert row is not None and (row["CreateIndex"], row["ModifyIndex"]) == (3, 3)
    assert store.prepared_queries.resolve("WEB-V1")["ID"] == Q1  # type: ignore[index]
    assert store.prepared_queries.resolve(Q1)["ID"] == Q1  # type: ignore[index]
    rendered = store.prepared_queries.resolve("geo-db")
    assert rendered is not None and rendered["Service"]["Service"] == "db"
    assert store.prepared_queries.resolve("nope") is None
    assert store.table_index("prepared_queries") == 5


def test_the_fsm_refuses_what_races_past_the_endpoint() -> None:
    store, _ = replay(commands())
    fsm = FSM(store)
    dup = C.prepared_query("create", definition(Q1 + "x", Name="WEB-v1", Service={}), ts=0)
    result = fsm.apply(10, C.encode(dup))
    assert is_error(result) and "aliases an existing query name" in result["Error"]
    missing = C.prepared_query("update", definition(S1, Name="z", Service={"Service": "x"}), ts=0)
    result = fsm.apply(11, C.encode(missing))
    assert result == {"Error": f"Cannot modify non-existent prepared query: '{S1}'"}
    gone = "99999999-9999-9999-9999-999999999999"
    bad_session = C.prepared_query(
        "create", definition(Q1[:-1] + "9", Session=gone, Service={"Service": "x"}), ts=0
    )
    result = fsm.apply(12, C.encode(bad_session))
    assert result == {"Error": f'invalid session "{gone}"'}
    assert len(store.prepared_queries.list()) == 3 and store.table_index("prepared_queries") == 5


def test_destroying_the_session_deletes_its_queries_in_the_same_apply() -> None:
    store, _ = replay(commands())
    ws = WatchSet()
    store.prepared_query_get(ws, Q3)
    fired: list[bool] = []
    store.watches.register(ws.topics, lambda: fired.append(True))
    FSM(store).apply(10, C.encode(C.session_destroy(S1, ts=0)))
    assert store.prepared_queries.get(Q3) is None and store.prepared_queries.for_session(S1) == []
    assert store.table_index("prepared_queries") == 10 == store.table_index("sessions")
    assert fired == [True]
    assert store.prepared_queries.get(Q1) is not None


def test_snapshot_round_trip_keeps_rows_and_indexes() -> None:
    store, _ = replay(commands())
    restored = StateStore()
    restored.restore(store.snapshot())
    assert restored.prepared_queries.list() == store.prepared_queries.list()
    assert restored.table_index("prepared_queries") == 5
    rendered = restored.prepared_queries.resolve("geo-web")
    assert rendered is not None and rendered["Service"]["Service"] == "web"
    # The session index came back too: destroying the session still takes its query.
    FSM(restored).apply(10, C.encode(C.session_destroy(S1, ts=0)))
    assert restored.prepared_queries.get(Q3) is None


def test_a_snapshot_without_the_table_restores_empty() -> None:
    import msgpack

    store, _ = replay(commands()[:2])
    doc = msgpack.unpackb(store.snapshot(), raw=False, strict_map_key=False)
    del doc["prepared_queries"]
    restored = StateStore()
    restored.restore(msgpack.packb(doc, use_bin_type=True))
    assert restored.prepared_queries.list() == []


def test_replay_is_identical() -> None:
    cmds = [
        *commands(),
        C.prepared_query("update", definition(Q1, Name="web-v2", Service={"Service": "web"}), ts=0),
        C.session_destroy(S1, ts=0),
        C.prepared_query("delete", {"ID": Q2}, ts=0),
    ]
    a, _ = replay(cmds)
    b, _ = replay(cmds)
    assert a.snapshot() == b.snapshot()
    assert [q["ID"] for q in a.prepared_queries.list()] == [Q1]
    assert a.prepared_queries.resolve("web-v2") is not None
    assert a.prepared_queries.resolve("web-v1") is None
