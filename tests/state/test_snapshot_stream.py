"""The store's snapshot bytes, written and read as streams: the same bytes the whole-document
encoding gave (old archives and Raft snapshots still load), and a restore entry carrying the
state zlib-compressed replaces the state exactly or, when bad, not at all."""

from __future__ import annotations

import gc
import io
import weakref
import zlib

import msgpack

from consulpy.state import commands as C
from consulpy.state import snapshot_stream
from consulpy.state.fsm import FSM, is_error
from consulpy.state.store import StateStore
from consulpy.state.structs import check_row


def _store() -> StateStore:
    store = StateStore()
    fsm = FSM(store)
    node = {
        "Node": "n1",
        "Address": "10.0.0.1",
        "Service": {"ID": "db", "Service": "db", "Port": 5432},
        "Checks": [check_row(Node="n1", CheckID="serfHealth", Status="passing")],
    }
    fsm.apply(1, C.encode(C.register(node, ts=1.0)))
    sid = "11111111-2222-3333-4444-555555555555"
    session = {"ID": sid, "Node": "n1", "Behavior": "release", "NodeChecks": ["serfHealth"]}
    fsm.apply(2, C.encode(C.session_create(session, ts=1.0)))
    for i in range(300):
        fsm.apply(3 + i, C.encode(C.kv("set", f"k/{i:03d}", f"v{i}".encode(), ts=1.0)))
    fsm.apply(400, C.encode(C.kv("lock", "k/lock", b"held", session=sid, ts=1.0)))
    fsm.apply(401, C.encode(C.kv("delete", "k/000", ts=1.0)))  # a tombstone
    return store


def _whole_document(store: StateStore) -> bytes:
    """How the snapshot was encoded before it was streamed: one packb of the dumped doc."""
    doc = store.freeze()
    kv = doc["kv"]
    doc["kv"] = {
        "entries": [kv["entries"].dump_item(e) for e in kv["entries"]],  # packed rows
        "tombstones": kv["tombstones"],
        "lock_delays": kv["lock_delays"],
    }
    doc["sessions"] = [s.dump() for s in doc["sessions"]]
    return msgpack.packb(doc, use_bin_type=True)


def test_streamed_bytes_equal_the_whole_document_and_load_back() -> None:
    store = _store()
    assert len(store.kv.entries) == 300 and store.kv.tombstones and store.kv.held
    data = store.snapshot()
    assert data == _whole_document(store)
    out = io.BytesIO()
    snapshot_stream.FrozenState(store.freeze()).write_to(out)
    assert out.getvalue() == data
    again = StateStore()
    again.restore_from(io.BytesIO(data))
    assert again.snapshot() == data
    assert again.kv.held == store.kv.held and again.last_index == store.last_index


def test_a_compressed_restore_entry_replaces_the_state_or_changes_nothing() -> None:
    source = _store()
    target = StateStore()
    fsm = FSM(target)
    fsm.apply(1, C.encode(C.kv("set", "other", b"x", ts=1.0)))
    before = msgpack.unpackb(target.snapshot(), strict_map_key=False)
    assert before.pop("last_index") == 1
    packed = zlib.compress(source.snapshot())
    for bad in (packed[: len(packed) // 2], zlib.compress(b"\x93\x01\x02\x03"), b"junk"):
        result = fsm.apply(2, C.encode(C.restore(bad, ts=1.0, encoding=C.RESTORE_ZLIB)))
        assert is_error(result)
        after = msgpack.unpackb(target.snapshot(), strict_map_key=False)
        assert after.pop("last_index") == 2  # the entry is applied (as an error) ...
        assert after == before  # ... and nothing else changed
    assert fsm.apply(3, C.encode(C.restore(packed, ts=1.0, encoding=C.RESTORE_ZLIB))) is True
    assert target.kv.get("other") is None
    assert [e.dump() for e in target.kv.list("")] == [e.dump() for e in source.kv.list("")]


def test_serialising_leaves_no_reference_cycle_holding_the_buffer() -> None:
    """The buffer holding a whole snapshot is freed when its last user drops it, not at the
    next full garbage collection (an idle server kept a 99 MiB snapshot that way)."""
    store = _store()
    enabled = gc.isenabled()
    gc.disable()
    try:
        buf = io.BytesIO()
        snapshot_stream.write(store.freeze(), buf)
        data = buf.getvalue()
        gone = weakref.ref(buf)
        del buf
        assert gone() is None
        assert len(data) > 0
        serialise = store.snapshot_source()
        assert serialise() == data
    finally:
        if enabled:
            gc.enable()
