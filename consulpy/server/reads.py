"""The named reads a server answers, each `fn(store, args, ws) -> (index, result)`.

Reads are addressed by name with msgpack-encodable arguments and results, so the same read
runs locally on a dev agent or on a server that a client agent forwarded it to. Results are
in Consul's wire shape (bytes where Consul renders base64); `None` means "not found" where
Consul answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consulpy.state.store import StateStore
from consulpy.state.txnops import kv_op
from consulpy.state.watch import WatchSet

ReadFn = Callable[[StateStore, dict[str, Any], WatchSet | None], tuple[int, Any]]


def kv_get(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, entry = store.kv_get(ws, args["key"])
    return index, ([entry.to_wire()] if entry is not None else None)


def kv_list(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, entries = store.kv_list(ws, args["key"])
    return index, ([e.to_wire() for e in entries] if entries else None)


def kv_keys(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    prefix = args["key"]
    index, keys = store.kv_keys(ws, prefix, args.get("separator", ""))
    if not keys and prefix:
        return index, None
    return index, keys


def session_info(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, session = store.session_get(ws, args["id"])
    return index, ([session.to_wire()] if session is not None else [])


def session_list(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, sessions = store.session_list(ws)
    return index, [s.to_wire() for s in sessions]


def session_node(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, sessions = store.session_node(ws, args["node"])
    return index, [s.to_wire() for s in sessions]


def txn_read(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """A read-only transaction, evaluated against the local store without a log entry."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    txn = store.txn(store.last_index)
    try:
        for op_index, op in enumerate(args["ops"]):
            outcome = kv_op(store, txn, op["KV"], 0.0)
            if isinstance(outcome, str):
                errors.append({"OpIndex": op_index, "What": outcome})
            else:
                results.extend(outcome)
    finally:
        txn.abort()
    if errors:
        return store.last_index, {"Results": None, "Errors": errors}
    return store.last_index, {"Results": results, "Errors": None}


READS: dict[str, ReadFn] = {
    "KVS.Get": kv_get,
    "KVS.List": kv_list,
    "KVS.ListKeys": kv_keys,
    "Session.Get": session_info,
    "Session.List": session_list,
    "Session.NodeSessions": session_node,
    "Txn.Read": txn_read,
}
