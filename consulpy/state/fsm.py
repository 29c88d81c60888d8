"""The FSM: the only code that mutates replicated state.

`apply(index, data)` decodes one command and applies it at that Raft index, inside one
`WriteTxn`: either everything the command does becomes visible (with ModifyIndex = index and
the touched watches woken) or nothing does. Results are plain msgpack-encodable values so that
they can travel back to a forwarding server; a failure the user should see is returned as
`{"Error": text}` (see `is_error`), never raised, because an exception here would stop the
replication of every later entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from consulpy.metrics import METRICS
from consulpy.metrics.registry import SAMPLE, Series
from consulpy.state import acl as acl_state
from consulpy.state import commands as C
from consulpy.state.sessions import Session
from consulpy.state.store import StateStore
from consulpy.state.txn import WriteTxn
from consulpy.state.txnops import apply_op
from consulpy.util.goquote import go_quote

log = structlog.get_logger("consulpy.fsm")

Result = Any


def error(text: str) -> dict[str, str]:
    return {"Error": text}


def is_error(result: Result) -> bool:
    return isinstance(result, dict) and len(result) == 1 and "Error" in result


# consul.fsm.<name>: the FSM apply time per command type, under Consul's names.
_FSM_METRIC: dict[str, str] = {
    C.KV: "fsm.kvs",
    C.TXN: "fsm.txn",
    C.SESSION_CREATE: "fsm.session",
    C.SESSION_DESTROY: "fsm.session",
    C.TOMBSTONE_REAP: "fsm.tombstone",
    C.REGISTER: "fsm.register",
    C.DEREGISTER: "fsm.deregister",
    C.CONFIG_ENTRY_SET: "fsm.config_entry",
    C.CONFIG_ENTRY_DELETE: "fsm.config_entry",
    C.CA_SET: "fsm.ca",
    C.CA_SERIAL: "fsm.ca",
    C.PREPARED_QUERY: "fsm.prepared-query",
}
_FSM_SERIES: dict[tuple[str, str | None], Series] = {}


def _fsm_series(name: str, op: object) -> Series:
    """consul.fsm.<name>'s series for one op label (none when `op` is not a string), bound
    once: applying an entry records with no lookup in the registry."""
    key = (name, op if isinstance(op, str) else None)
    series = _FSM_SERIES.get(key)
    if series is None:
        labels = (("op", key[1]),) if key[1] is not None else ()
        series = _FSM_SERIES[key] = METRICS.handle(SAMPLE, name, labels)
    return series


class FSM:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._handlers: dict[str, Callable[[WriteTxn, dict[str, Any]], Result]] = {
            C.KV: self._kv,
            C.TXN: self._txn,
            C.SESSION_CREATE: self._session_create,
            C.SESSION_DESTROY: self._session_destroy,
            C.TOMBSTONE_REAP: self._tombstone_reap,
            C.REGISTER: self._register,
            C.DEREGISTER: self._deregister,
            C.CONFIG_ENTRY_SET: self._config_entry_set,
            C.CONFIG_ENTRY_DELETE: self._config_entry_delete,
            C.CA_SET: self._ca_set,
            C.CA_SERIAL: self._ca_serial,
            C.PREPARED_QUERY: self._prepared_query,
            C.COORDINATE_BATCH_UPDATE: self._coordinate_batch_update,
            C.AUTOPILOT_SET: self._autopilot_set,
        }
        for kind, fn in acl_state.HANDLERS.items():
            self._handlers[kind] = self._acl_handler(fn)

    def _acl_handler(
        self, fn: Callable[..., Result]
    ) -> Callable[[WriteTxn, dict[str, Any]], Result]:
        def handler(txn: WriteTxn, cmd: dict[str, Any]) -> Result:
            result = fn(self.store.acl, txn, cmd)  # the tables are replaced on restore
            if isinstance(result, str):
                txn.abort()
                return error(result)
            return result

        return handler

    def apply(self, index: int, data: bytes) -> Result:
        cmd = C.decode(data)
        return self.apply_command(index, cmd)

    def apply_command(self, index: int, cmd: dict[str, Any]) -> Result:
        store = self.store
        kind = cmd.get("t")
        if kind == C.RESTORE:
            try:
                store.restore_from(C.restore_source(cmd["data"], cmd.get("enc") or ""))
            except Exception as exc:  # a bad snapshot leaves the state as it was
                store.last_index = max(store.last_index, index)
                return error(f"snapshot restore failed: {exc}")
            store.last_index = max(store.last_index, index)
            return True
        handler = self._handlers.get(kind)  # type: ignore[arg-type]
        if handler is None:
            # An unknown command (e.g. from a newer version) must not stop replication.
            store.last_index = max(store.last_index, index)
            return error(f"unknown command type {kind!r}")
        start = time.perf_counter()
        txn = store.txn(index)
        try:
            result = handler(txn, cmd)
        except Exception as exc:
            # A command the endpoints should have refused (or a bug): undo what it did, so
            # it fails the same way, with the same text and no trace, on every server and
            # on every replay; raising would hand a bare exception to the proposer only.
            txn.abort()
            store.last_index = max(store.last_index, index)
            log.error("command failed to apply", index=index, kind=kind, exc_info=True)
            return error(f"failed to apply {kind} command: {type(exc).__name__}: {exc}")
        if txn.done:
            store.last_index = max(store.last_index, index)
        elif is_error(result):  # a refused command changes nothing, whatever it touched
            txn.abort()
            store.last_index = max(store.last_index, index)
        else:
            txn.commit()
        name = _FSM_METRIC.get(kind) or ("fsm.acl" if kind.startswith("acl_") else "fsm." + kind)
        series = _fsm_series(name, cmd.get("verb") or cmd.get("op"))
        series.add((time.perf_counter() - start) * 1000.0)
        return result

    # ------------------------------------------------------------------- KV
    def _kv(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        store = self.store
        kv = store.kv
        verb = cmd["verb"]
        key = cmd["key"]
        if verb == "set":
            kv.set(txn, key, cmd["value"], cmd["flags"])
            return True
        if verb == "cas":
            return kv.cas(txn, key, cmd["value"], cmd["flags"], cmd["index"]) is not None
        if verb == "lock":
            session = cmd["session"]
            if not session:
                return error("missing session")
            if store.sessions.get(session) is None:
                return error(f"invalid session {go_quote(session)}")
            entry, _ = kv.lock(txn, key, cmd["value"], cmd["flags"], session, cmd["ts"])
            return entry is not None
        if verb == "unlock":
            if not cmd["session"]:
                return error("missing session")
            return kv.unlock(txn, key, cmd["value"], cmd["flags"], cmd["session"]) is not None
        if verb == "delete":
            kv.delete(txn, key)
            return True
        if verb == "delete-cas":
            return kv.delete_cas(txn, key, cmd["index"])
        if verb == "delete-tree":
            kv.delete_tree(txn, key)
            return True
        return error(f"unknown KV verb {go_quote(verb)}")

    # ------------------------------------------------------------------ txn
    def _txn(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        now = cmd["ts"]
        for op_index, op in enumerate(cmd["ops"]):
            outcome = apply_op(self.store, txn, op, now)
            if isinstance(outcome, str):
                errors.append({"OpIndex": op_index, "What": outcome})
            else:
                results.extend(outcome)
        if errors:
            txn.abort()
            return {"Results": None, "Errors": errors}
        return {"Results": results, "Errors": None}

    # ------------------------------------------------------------- sessions
    def _session_create(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        store = self.store
        s = cmd["session"]
        node = s["Node"]
        if store.catalog.node(node) is None:
            return error("Missing node registration")
        node_checks = s.get("NodeChecks")
        service_checks = s.get("ServiceChecks")
        legacy = s.get("Checks")
        for group in (node_checks, legacy, service_checks):
            for check_id in group or ():
                check = store.catalog.check(node, check_id)
                if check is None:
                    return error(f"Missing check '{check_id}' registration")
                if check["Status"] == "critical":
                    return error(f"Check '{check_id}' is in critical state")
        if store.sessions.get(s["ID"]) is not None:
            return error(f"Session ID {s['ID']} already exists")
        session = Session(
            id=s["ID"],
            name=s.get("Name", ""),
            node=node,
            lock_delay=int(s.get("LockDelay", 0)),
            behavior=s.get("Behavior", "release"),
            ttl=s.get("TTL", ""),
            node_checks=node_checks,
            service_checks=service_checks,
            checks=legacy,
            create_index=txn.index,
            modify_index=txn.index,
        )
        store.sessions.insert(txn, session)
        return session.id

    def _session_destroy(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        self.store.session_destroy(txn, cmd["id"], cmd["ts"])
        return True

    def _tombstone_reap(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        self.store.kv.expire_lock_delays(cmd["ts"])
        return self.store.kv.reap_tombstones(txn, cmd["upto"])

    # -------------------------------------------------------------- catalog
    def _register(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        """Upsert a node, optionally a service on it, and checks. The request has been
        validated and normalised by the endpoint; the FSM enforces cross-row rules."""
        store = self.store
        catalog = store.catalog
        req = cmd["req"]
        now = cmd["ts"]
        node_name = req["Node"]
        existing = catalog.node(node_name)
        node_id = req.get("ID") or ""
        if node_id:
            other = catalog.node_by_id(node_id)
            if other is not None and other["Node"] != node_name:
                return error(
                    f"Error while renaming Node ID: {go_quote(node_id)}: Node name "
                    f"{node_name} is reserved by node {other['ID']} with name {other['Node']}"
                )
        if not req.get("SkipNodeUpdate") or existing is None:
            catalog.put_node(
                txn,
                {
                    "ID": node_id,
                    "Node": node_name,
                    "Address": req.get("Address", ""),
                    "Datacenter": req.get("Datacenter", ""),
                    "TaggedAddresses": req.get("TaggedAddresses"),
                    "Meta": req.get("NodeMeta"),
                    "Locality": req.get("Locality") or None,
                },
            )
        service = req.get("Service")
        if service:
            row = dict(service)
            row["Node"] = node_name
            catalog.put_service(txn, row)
        for check in req.get("Checks") or ():
            row = dict(check)
            row["Node"] = node_name
            sid = row.get("ServiceID") or ""
            if sid:
                svc = catalog.service(node_name, sid)
                if svc is None:
                    txn.abort()
                    return error(
                        f"Unknown service ID '{sid}' for check ID '{row.get('CheckID', '')}'"
                    )
                row["ServiceName"] = svc["Service"]
                row["ServiceTags"] = list(svc.get("Tags") or [])
            store.put_check(txn, row, now)
        return True

    def _deregister(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        store = self.store
        req = cmd["req"]
        now = cmd["ts"]
        node = req["Node"]
        if req.get("ServiceID"):
            store.delete_service(txn, node, req["ServiceID"], now)
        elif req.get("CheckID"):
            store.delete_check(txn, node, req["CheckID"], now)
        else:
            store.delete_node(txn, node, now)
        return True

    def _coordinate_batch_update(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        """Consul's CoordinateBatchUpdate: nodes absent from the catalog are skipped."""
        store = self.store
        for update in cmd["updates"]:
            node = update["Node"]
            if store.catalog.node(node) is None:
                continue
            row = {"Node": node, "Segment": update.get("Segment") or "", "Coord": update["Coord"]}
            store.coordinates.put(txn, row)
        return True

    # -------------------------------------------------------------- connect
    def _config_entry_set(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        """Store a (validated) config entry; with `cas`, only at that ModifyIndex (0: only if
        absent). Cross-entry rules are checked here, against this exact state."""
        from consulpy.connect import config_entries as ce

        connect = self.store.connect
        entry = cmd["entry"]
        existing = connect.entry(entry["Kind"], entry["Name"])
        cas = cmd.get("cas")
        if cas is not None and (
            (cas == 0 and existing is not None)
            or (cas != 0 and (existing is None or existing["ModifyIndex"] != cas))
        ):
            return False
        try:
            ce.check_graph(entry, connect.entry, list_entries=connect.list_entries)
        except ce.GraphError as exc:
            return error(str(exc))
        connect.put_entry(txn, entry)
        return True

    def _config_entry_delete(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        from consulpy.connect import config_entries as ce

        connect = self.store.connect
        existing = connect.entry(cmd["kind"], cmd["name"])
        cas = cmd.get("cas")
        if cas is not None and (existing is None or existing["ModifyIndex"] != cas):
            return False
        if existing is not None:
            try:
                ce.check_graph(
                    existing, connect.entry, deleting=True, list_entries=connect.list_entries
                )
            except ce.GraphError as exc:
                return error(str(exc))
            connect.delete_entry(txn, cmd["kind"], cmd["name"])
        return True

    def _ca_set(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        connect = self.store.connect
        cas = cmd.get("cas")
        current = connect.ca_config
        if cas is not None and (current is None or current["ModifyIndex"] != cas):
            return error("CA configuration changed concurrently; try again")
        connect.set_ca(txn, cmd["config"], cmd["roots"])
        return True

    def _ca_serial(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        return self.store.connect.next_serial(txn)

    def _autopilot_set(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        """True when stored; False when `cas` did not match (Consul answers false)."""
        return self.store.autopilot.set(txn, cmd["config"], cmd.get("cas"))

    # ----------------------------------------------------- prepared queries
    def _prepared_query(self, txn: WriteTxn, cmd: dict[str, Any]) -> Result:
        """Create, update or delete a prepared query; the rules that depend on other rows
        (unique names, the bound session exists) are checked here, against this state."""
        from consulpy.state import prepared_queries as pq

        store = self.store
        table = store.prepared_queries
        op = cmd["op"]
        query = cmd["query"]
        query_id = query["ID"]
        existing = table.get(query_id)
        if op not in C.PREPARED_QUERY_OPS:
            return error(f"Unknown prepared query operation: {op}")
        if op != "create" and existing is None:
            return error(f"Cannot modify non-existent prepared query: '{query_id}'")
        if op == "delete":
            table.delete(txn, query_id)
            return True
        if op == "create" and existing is not None:
            return error(f"prepared query ID {query_id} already exists")
        try:
            pq.check_against(query, table.others(query_id))
            session = query.get("Session") or ""
            if session:
                problem = pq.uuid_problem(session)
                if problem:
                    return error(f"invalid session: {problem}")
                if store.sessions.get(session) is None:
                    return error(f"invalid session {go_quote(session)}")
            pq.compile_template(query)
        except pq.QueryError as exc:
            return error(str(exc))
        row = dict(query)
        row["CreateIndex"] = existing["CreateIndex"] if existing is not None else txn.index
        row["ModifyIndex"] = txn.index
        table.put(txn, row)
        return query_id
