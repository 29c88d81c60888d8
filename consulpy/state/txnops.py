"""Evaluation of one KV operation of a /v1/txn request.

Shared by the FSM (write transactions, applied through Raft) and the read path (read-only
transactions, evaluated on a server's store without a log entry). Returns the op's results,
or the error text Consul reports for it.
"""

from __future__ import annotations

from collections.abc import Callable
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


# ------------------------------------------------------------ catalog operations
CATALOG_READ_VERBS = frozenset({"get"})


def _row_without_indexes(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("CreateIndex", "ModifyIndex")}


def _stale(verb: str, index: int, existing: dict[str, Any] | None) -> bool:
    """Whether a cas/delete-cas op loses: index 0 on cas means "only if absent"."""
    if verb == "cas" and index == 0:
        return existing is not None
    if verb in ("cas", "delete-cas"):
        return existing is None or existing["ModifyIndex"] != index
    return False


def _catalog_op(
    kind: str,
    verb: str,
    where: str,
    existing: dict[str, Any] | None,
    index: int,
    view: Callable[[dict[str, Any]], dict[str, Any]],
    put: Callable[[], dict[str, Any] | str],
    delete: Callable[[], None],
) -> list[dict[str, Any]] | str:
    """The verb dispatch shared by Node, Service and Check ops; `put` runs after the CAS check."""
    if verb == "get":
        if existing is None:
            return f"{where} doesn't exist"
        return [{kind: view(existing)}]
    if verb in ("set", "cas"):
        if _stale(verb, index, existing):
            return f"failed to set {where}, index is stale"
        row = put()
        return row if isinstance(row, str) else [{kind: view(row)}]
    if verb in ("delete", "delete-cas"):
        if _stale(verb, index, existing):
            return f"failed to delete {where}, index is stale"
        delete()
        return []
    return f"unknown {kind} verb {go_quote(verb)}"


def node_op(
    store: StateStore, txn: WriteTxn, op: dict[str, Any], now: float
) -> list[dict[str, Any]] | str:
    from consulpy.state.views import node_view

    catalog = store.catalog
    verb = op.get("Verb", "")
    node = op.get("Node") or {}
    name = node.get("Node", "")
    existing = None
    if node.get("ID"):
        existing = catalog.node_by_id(node["ID"])
    if existing is None and name:
        existing = catalog.node(name)
    if existing is not None:
        name = existing["Node"]
    if verb in ("set", "cas") and not name:
        return "Must provide node"

    def put() -> dict[str, Any]:
        row = _row_without_indexes(node)
        row["Node"] = name
        return catalog.put_node(txn, row)

    return _catalog_op(
        "Node",
        verb,
        f"node {go_quote(name)}",
        existing,
        node.get("ModifyIndex", 0),
        node_view,
        put,
        lambda: store.delete_node(txn, name, now),
    )


def service_op(
    store: StateStore, txn: WriteTxn, op: dict[str, Any], now: float
) -> list[dict[str, Any]] | str:
    from consulpy.state.views import node_service_view

    catalog = store.catalog
    verb = op.get("Verb", "")
    node = op.get("Node", "")
    svc = op.get("Service") or {}
    sid = svc.get("ID", "")
    if verb in ("set", "cas") and catalog.node(node) is None:
        return f"node {go_quote(node)} doesn't exist"

    def put() -> dict[str, Any]:
        row = _row_without_indexes(svc)
        row["Node"] = node
        return catalog.put_service(txn, row)

    return _catalog_op(
        "Service",
        verb,
        f"service {go_quote(sid)} on node {go_quote(node)}",
        catalog.service(node, sid),
        svc.get("ModifyIndex", 0),
        node_service_view,
        put,
        lambda: store.delete_service(txn, node, sid, now),
    )


def check_op(
    store: StateStore, txn: WriteTxn, op: dict[str, Any], now: float
) -> list[dict[str, Any]] | str:
    from consulpy.state.views import check_view

    catalog = store.catalog
    verb = op.get("Verb", "")
    check = op.get("Check") or {}
    node = check.get("Node", "")
    cid = check.get("CheckID", "")
    if verb in ("set", "cas") and catalog.node(node) is None:
        return f"node {go_quote(node)} doesn't exist"

    def put() -> dict[str, Any] | str:
        row = _row_without_indexes(check)
        sid = row.get("ServiceID") or ""
        if sid:
            svc = catalog.service(node, sid)
            if svc is None:
                return f"Unknown service ID '{sid}' for check ID '{cid}'"
            row["ServiceName"] = svc["Service"]
            row["ServiceTags"] = list(svc.get("Tags") or [])
        store.put_check(txn, row, now)
        return catalog.check(node, cid)  # type: ignore[return-value]

    return _catalog_op(
        "Check",
        verb,
        f"check {go_quote(cid)} on node {go_quote(node)}",
        catalog.check(node, cid),
        check.get("ModifyIndex", 0),
        check_view,
        put,
        lambda: store.delete_check(txn, node, cid, now),
    )


_OPS = {"KV": kv_op, "Node": node_op, "Service": service_op, "Check": check_op}


def apply_op(
    store: StateStore, txn: WriteTxn, op: dict[str, Any], now: float
) -> list[dict[str, Any]] | str:
    """One operation of a transaction, whichever kind it is."""
    for kind, fn in _OPS.items():
        if kind in op:
            return fn(store, txn, op[kind], now)
    return f"unknown txn operation {sorted(op)!r}"


def is_read_only(ops: list[dict[str, Any]]) -> bool:
    for op in ops:
        if "KV" in op:
            if op["KV"].get("Verb", "") not in READ_VERBS:
                return False
        elif next(iter(op.values())).get("Verb", "") not in CATALOG_READ_VERBS:
            return False
    return True
