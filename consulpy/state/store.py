"""The state store: every table a server replicates, their indexes, and their watches.

Reads are plain method calls that return `(index, result)` and record what they read in an
optional `WatchSet`. Writes happen only inside `consulpy.state.fsm.FSM.apply`, through a
`WriteTxn`; the helpers here that take a `txn` are the multi-table rules (a session's
invalidation releases or deletes its keys, a node's removal takes its services, checks and
sessions with it) that several commands share.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

from consulpy.state import snapshot_stream
from consulpy.state.acl import ACLTables
from consulpy.state.autopilot import AutopilotTable
from consulpy.state.catalog import CatalogTables
from consulpy.state.connect import ConnectTables
from consulpy.state.coordinates import CoordinateTable
from consulpy.state.kv import MAX_LOCK_DELAY_NS, KVEntry, KVTable
from consulpy.state.prepared_query_table import PreparedQueryTable
from consulpy.state.sessions import BEHAVIOR_DELETE, Session, SessionTable
from consulpy.state.txn import WriteTxn
from consulpy.state.watch import WatchRegistry, WatchSet

SNAPSHOT_FORMAT = 1


class StateStore:
    def __init__(self) -> None:
        self.kv = KVTable()
        self.sessions = SessionTable()
        self.catalog = CatalogTables()
        self.connect = ConnectTables()
        self.prepared_queries = PreparedQueryTable()
        self.acl = ACLTables()
        self.coordinates = CoordinateTable()
        self.autopilot = AutopilotTable()
        self.indexes: dict[str, int] = {}
        self.last_index = 0
        self.watches = WatchRegistry()

    def txn(self, index: int) -> WriteTxn:
        return WriteTxn(self, index)

    def table_index(self, *tables: str) -> int:
        indexes = self.indexes
        return max((indexes.get(t, 0) for t in tables), default=0)

    # ------------------------------------------------------------------- KV
    def kv_max_index(self) -> int:
        return self.table_index("kvs", "tombstones")

    def kv_get(self, ws: WatchSet | None, key: str) -> tuple[int, KVEntry | None]:
        if ws is not None:
            ws.add(("kv", key))
        entry = self.kv.get(key)
        if entry is not None:
            return entry.modify_index, entry
        return self.kv_max_index(), None

    def _prefix_index(self, prefix: str, entries_max: int) -> int:
        # Consul: entries and tombstones under the prefix; the whole table for the root or
        # when nothing under the prefix has ever existed.
        index = max(entries_max, self.kv.tombstone_max(prefix)) if prefix else 0
        return index or self.kv_max_index()

    def kv_list(self, ws: WatchSet | None, prefix: str) -> tuple[int, list[KVEntry]]:
        if ws is not None:
            ws.add(("kvp", prefix))
        entries = self.kv.list(prefix)
        top = max((e.modify_index for e in entries), default=0)
        return self._prefix_index(prefix, top), entries

    def kv_keys(self, ws: WatchSet | None, prefix: str, separator: str) -> tuple[int, list[str]]:
        if ws is not None:
            ws.add(("kvp", prefix))
        pairs = list(self.kv.key_indexes(prefix))
        top = max((index for _, index in pairs), default=0)
        keys: list[str] = []
        if separator:
            start = len(prefix)
            last = None
            for key, _ in pairs:
                cut = key.find(separator, start)
                if cut >= 0:
                    key = key[: cut + len(separator)]
                if key != last:
                    keys.append(key)
                    last = key
        else:
            keys = [key for key, _ in pairs]
        return self._prefix_index(prefix, top), keys

    # ------------------------------------------------------------- sessions
    def session_get(self, ws: WatchSet | None, sid: str) -> tuple[int, Session | None]:
        if ws is not None:
            ws.add(("t", "sessions"))
        return self.table_index("sessions"), self.sessions.get(sid)

    def session_list(self, ws: WatchSet | None) -> tuple[int, list[Session]]:
        if ws is not None:
            ws.add(("t", "sessions"))
        return self.table_index("sessions"), self.sessions.list()

    def session_node(self, ws: WatchSet | None, node: str) -> tuple[int, list[Session]]:
        if ws is not None:
            ws.add(("t", "sessions"))
        return self.table_index("sessions"), self.sessions.for_node(node)

    def session_destroy(self, txn: WriteTxn, sid: str, now: float) -> bool:
        """Invalidate a session: apply its behaviour to the keys it holds, start their
        lock-delay, and delete it."""
        session = self.sessions.get(sid)
        if session is None:
            return False
        delay_ns = min(session.lock_delay, MAX_LOCK_DELAY_NS)
        until = now + delay_ns / 1e9
        for key in sorted(self.kv.held.get(sid, ())):
            entry = self.kv.get(key)
            if entry is None:
                continue
            if session.behavior == BEHAVIOR_DELETE:
                self.kv.delete(txn, key)
            else:
                self.kv.unlock(txn, key, entry.value, entry.flags, sid)
            if delay_ns > 0:
                self.kv.set_lock_delay(txn, key, until)
        # Prepared queries bound to the session go with it, in the same transaction.
        for query_id in self.prepared_queries.for_session(sid):
            self.prepared_queries.delete(txn, query_id)
        self.sessions.remove(txn, sid)
        return True

    def invalidate_check_sessions(
        self, txn: WriteTxn, node: str, check_id: str, now: float
    ) -> None:
        for sid in self.sessions.for_check(node, check_id):
            self.session_destroy(txn, sid, now)

    # ----------------------------------------------------- prepared queries
    def prepared_query_get(
        self, ws: WatchSet | None, query_id: str
    ) -> tuple[int, dict[str, Any] | None]:
        if ws is not None:
            ws.add(("pq", query_id))
        return self.table_index("prepared_queries"), self.prepared_queries.get(query_id)

    def prepared_query_list(self, ws: WatchSet | None) -> tuple[int, list[dict[str, Any]]]:
        if ws is not None:
            ws.add(("t", "prepared_queries"))
        return self.table_index("prepared_queries"), self.prepared_queries.list()

    def prepared_query_resolve(
        self, ws: WatchSet | None, name: str
    ) -> tuple[int, dict[str, Any] | None]:
        """The (rendered) query an ID or name designates; raises QueryError as Consul does."""
        if ws is not None:
            ws.add(("t", "prepared_queries"))
        return self.table_index("prepared_queries"), self.prepared_queries.resolve(name)

    # ---------------------------------------------------------- coordinates
    def coordinate_list(self, ws: WatchSet | None) -> tuple[int, list[dict[str, Any]]]:
        if ws is not None:
            ws.add(("t", "coordinates"))
        return self.table_index("coordinates"), self.coordinates.list()

    def coordinate_node(self, ws: WatchSet | None, node: str) -> tuple[int, list[dict[str, Any]]]:
        if ws is not None:
            ws.add(("coord", node))
        return self.table_index("coordinates"), self.coordinates.for_node(node)

    # -------------------------------------------------------------- catalog
    def delete_check(self, txn: WriteTxn, node: str, check_id: str, now: float) -> None:
        if self.catalog.delete_check(txn, node, check_id) is not None:
            self.invalidate_check_sessions(txn, node, check_id, now)

    def delete_service(self, txn: WriteTxn, node: str, service_id: str, now: float) -> None:
        if self.catalog.service(node, service_id) is None:
            return
        for check in self.catalog.node_checks(node):
            if check.get("ServiceID") == service_id:
                self.delete_check(txn, node, check["CheckID"], now)
        self.catalog.delete_service(txn, node, service_id)

    def delete_node(self, txn: WriteTxn, node: str, now: float) -> None:
        if self.catalog.node(node) is None:
            return
        for service in self.catalog.node_services(node):
            self.delete_service(txn, node, service["ID"], now)
        for check in self.catalog.node_checks(node):
            self.delete_check(txn, node, check["CheckID"], now)
        for session in self.sessions.for_node(node):
            self.session_destroy(txn, session.id, now)
        self.coordinates.delete_node(txn, node)
        self.catalog.delete_node(txn, node)

    def put_check(self, txn: WriteTxn, row: dict[str, Any], now: float) -> None:
        _, became_critical = self.catalog.put_check(txn, row)
        if became_critical:
            self.invalidate_check_sessions(txn, row["Node"], row["CheckID"], now)

    # ------------------------------------------------------------- snapshot
    def freeze(self) -> dict[str, Any]:
        """The state now, frozen (cheap: rows are immutable, so the tables are shallow
        copies); `snapshot_stream.write` serialises it, possibly in a worker thread."""
        return {
            "format": SNAPSHOT_FORMAT,
            "last_index": self.last_index,
            "indexes": dict(self.indexes),
            "kv": self.kv.frozen_copy(),
            "sessions": self.sessions.frozen_copy(),
            "catalog": self.catalog.frozen_copy(),
            "connect": self.connect.frozen_copy(),
            "prepared_queries": self.prepared_queries.frozen_copy(),
            "acl": self.acl.frozen_copy(),
            "coordinates": self.coordinates.frozen_copy(),
            "autopilot": self.autopilot.frozen_copy(),
        }

    def snapshot_source(self) -> Callable[[], bytes]:
        """Freeze the state now and return a function that serialises the frozen copy; it
        may run in a worker thread."""
        frozen = self.freeze()

        def serialise() -> bytes:
            buf = io.BytesIO()
            snapshot_stream.write(frozen, buf)
            return buf.getvalue()

        return serialise

    def snapshot(self) -> bytes:
        return self.snapshot_source()()

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot, then wake every blocked query."""
        self.restore_from(snapshot_stream.buffer_reader(data))

    def restore_from(self, src: IO[bytes]) -> None:
        """Replace the whole state with a snapshot read from a file, unpacked a section at a
        time (KV rows one by one); the current state stays until the new one is complete."""
        self.adopt(StateStore.loaded_from(src))

    def adopt(self, other: StateStore) -> None:
        """Take every table of `other` (a store built by loaded_from) as this store's state,
        in one step on the event loop, then wake every blocked query."""
        self.kv, self.sessions, self.catalog, self.connect = (
            other.kv,
            other.sessions,
            other.catalog,
            other.connect,
        )
        self.prepared_queries = other.prepared_queries
        self.acl = other.acl
        self.coordinates = other.coordinates
        self.autopilot = other.autopilot
        self.indexes = other.indexes
        self.last_index = other.last_index
        self.watches.notify_all()

    @staticmethod
    def loaded_from(src: IO[bytes]) -> StateStore:
        """A new store holding a snapshot read from a file (ValueError and msgpack errors
        when it is not one). Touches no other store, so it may run in a worker thread."""
        new = StateStore()
        new._load(src)
        return new

    def _load(self, src: IO[bytes]) -> None:
        reader = snapshot_stream.Reader(src)
        fmt: Any = None
        kv = KVTable()
        sessions = SessionTable()
        catalog = CatalogTables()
        connect = ConnectTables()
        prepared_queries = PreparedQueryTable()
        acl = ACLTables()
        coordinates = CoordinateTable()
        autopilot = AutopilotTable()
        indexes: Any = None
        last_index: Any = None
        for section in reader.sections():
            if section == "format":
                fmt = reader.value()
                if fmt != SNAPSHOT_FORMAT:
                    raise ValueError(f"unsupported state snapshot format {fmt!r}")
            elif section == "kv":
                parts: dict[str, Any] = {}
                for key in reader.map_keys():
                    if key == "entries":
                        parts[key] = [KVEntry.load(row) for row in reader.items()]
                    else:
                        parts[key] = reader.value()
                kv.load_rows(parts.get("entries", []), parts["tombstones"], parts)
            elif section == "sessions":
                sessions.load(reader.items())
            elif section == "catalog":
                catalog.load(reader.value())
            elif section == "connect":
                connect.load(reader.value() or {})
            elif section == "prepared_queries":
                prepared_queries.load(reader.value() or [])
            elif section == "acl":
                acl.load(reader.value() or {})
            elif section == "coordinates":
                coordinates.load(reader.value() or [])
            elif section == "autopilot":
                autopilot.load(reader.value())
            elif section == "indexes":
                indexes = reader.value()
            elif section == "last_index":
                last_index = reader.value()
            else:
                reader.value()  # a section a newer version added: skipped
        reader.finish()
        if fmt != SNAPSHOT_FORMAT:
            raise ValueError("state snapshot has no format")
        if not isinstance(indexes, dict) or isinstance(last_index, bool):
            raise ValueError("state snapshot lacks its indexes")
        self.kv, self.sessions, self.catalog, self.connect = kv, sessions, catalog, connect
        self.prepared_queries = prepared_queries
        self.acl = acl
        self.coordinates = coordinates
        self.autopilot = autopilot
        self.indexes = dict(indexes)
        self.last_index = int(last_index)
