"""Evaluation of one KV operation of a /v1/txn request.

Shared by the FSM (write transactions, applied through Raft) and the read path (read-only
transactions, evaluated on a server's store without a log entry). Returns the op's results,
or the error text Consul reports for it.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.kv import LOCK_DELAYED, KVEntry
from consulpy.state.store import StateStore
from consulpy.state.txn import WriteTxn
from consulpy.util.goquote import go_quote

READ_VERBS = frozenset(
    {"get", "get-or-empty", "get-tree", "check-index", "check-session", "check-not-exists"}
)
WRITE_VERBS = frozenset({"set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas"})


def kv_op(
    store: StateStore, txn: WriteTxn, op: dict[str, Any], now: float
) -> list[dict[str, Any]] | str:
    """One KV op of a transaction: a list of results, or the error text."""
    kv = store.kv
    verb = op.get("Verb", "")
    key = op.get("Key", "")
    value = op.get("Value") or b""
    flags = op.get("Flags", 0)
    index = op.get("Index", 0)
    session = op.get("Session", "")
    qkey = go_quote(key)

    def meta(entry: KVEntry) -> list[dict[str, Any]]:
        return [{"KV": entry.to_wire(with_value=False)}]

    def full(entry: KVEntry) -> list[dict[str, Any]]:
        return [{"KV": entry.to_wire(with_value=True)}]

    if not key and verb != "delete-tree":
        return "Must provide key"
    if verb == "set":
        return meta(kv.set(txn, key, value, flags))
    if verb == "cas":
        entry = kv.cas(txn, key, value, flags, index)
        return meta(entry) if entry is not None else f"failed to set key {qkey}, index is stale"
    if verb == "lock":
        if not session:
            return "missing session"
        if store.sessions.get(session) is None:
            return f"invalid session {go_quote(session)}"
        entry, why = kv.lock(txn, key, value, flags, session, now)
        if entry is not None:
            return meta(entry)
        if why == LOCK_DELAYED:
            return f"failed to lock key {qkey} due to lock delay"
        return f"failed to lock key {qkey}, lock is already held"
    if verb == "unlock":
        if not session:
            return "missing session"
        entry = kv.unlock(txn, key, value, flags, session)
        if entry is None:
            return f"failed to unlock key {qkey}, lock isn't held, or is held by another session"
        return meta(entry)
    if verb == "get":
        entry = kv.get(key)
        return full(entry) if entry is not None else f"key {qkey} doesn't exist"
    if verb == "get-or-empty":
        entry = kv.get(key)
        if entry is None:
            return [{"KV": KVEntry(key, b"", 0, "", 0, 0, 0).to_wire()}]
        return full(entry)
    if verb == "get-tree":
        return [{"KV": e.to_wire()} for e in kv.list(key)]
    if verb == "check-index":
        entry = kv.get(key)
        if entry is None:
            return f"failed to check index, key {qkey} doesn't exist"
        if entry.modify_index != index:
            return (
                f"failed index check for key {qkey}, current modify index "
                f"{entry.modify_index} != {index}"
            )
        return meta(entry)
    if verb == "check-session":
        entry = kv.get(key)
        if entry is None:
            return f"failed to check session, key {qkey} doesn't exist"
        if entry.session != session:
            return (
                f"failed session check for key {qkey}, current session "
                f"{go_quote(entry.session)} != {go_quote(session)}"
            )
        return meta(entry)
    if verb == "check-not-exists":
        return f"key {qkey} exists" if kv.get(key) is not None else []
    if verb == "delete":
        kv.delete(txn, key)
        return []
    if verb == "delete-tree":
        kv.delete_tree(txn, key)
        return []
    if verb == "delete-cas":
        if not kv.delete_cas(txn, key, index):
            return f"failed to delete key {qkey}, index is stale"
        return []
    return f"unknown KV verb {go_quote(verb)}"
