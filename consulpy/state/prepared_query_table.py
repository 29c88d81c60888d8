"""The prepared-queries table and its indexes (ID, lower-cased Name, template prefix, Session).

Rows are the stored JSON shape of `consulpy.state.prepared_queries` plus `CreateIndex` and
`ModifyIndex`; a row is never mutated in place (an update stores a new dict), so a snapshot
can keep references. The cross-row rules (unique names, one empty-name template, the bound
session exists) are checked by the FSM against this exact state.
"""

from __future__ import annotations

from typing import Any

from consulpy.state import prepared_queries as pq
from consulpy.state.txn import WriteTxn

Row = dict[str, Any]
TABLE = "prepared_queries"


def topic(query_id: str) -> tuple[str, str]:
    return ("pq", query_id)


class PreparedQueryTable:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.by_name: dict[str, str] = {}  # lower-cased Name -> ID (static and templates)
        self.templates: dict[str, str] = {}  # ID -> lower-cased prefix (template rows only)
        self.by_session: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- reads
    def get(self, query_id: str) -> Row | None:
        return self.rows.get(query_id)

    def list(self) -> list[Row]:
        return [self.rows[i] for i in sorted(self.rows)]

    def for_session(self, session_id: str) -> list[str]:
        return sorted(self.by_session.get(session_id, ()))

    def others(self, query_id: str) -> list[Row]:
        """Every stored query but `query_id` (for the uniqueness rules)."""
        return [r for i, r in self.rows.items() if i != query_id]

    def resolve(self, name: str) -> Row | None:
        """The (rendered) query `name` designates (spec 7.4), using the indexes to narrow the
        candidates to: the ID match, the exact-name match and the templates."""
        lowered = name.lower()
        candidates: list[Row] = []
        for key in (lowered, name):
            row = self.rows.get(key)
            if row is not None and row not in candidates:
                candidates.append(row)
        named = self.by_name.get(lowered)
        if named is not None and self.rows[named] not in candidates:
            candidates.append(self.rows[named])
        for query_id, prefix in self.templates.items():
            if lowered.startswith(prefix) and self.rows[query_id] not in candidates:
                candidates.append(self.rows[query_id])
        return pq.resolve(candidates, name)

    # --------------------------------------------------------------- writes
    def _index(self, row: Row) -> None:
        query_id = row["ID"]
        if row.get("Name"):
            self.by_name[row["Name"].lower()] = query_id
        if (row.get("Template") or {}).get("Type"):
            self.templates[query_id] = (row.get("Name") or "").lower()
        if row.get("Session"):
            self.by_session.setdefault(row["Session"], set()).add(query_id)

    def _unindex(self, row: Row) -> None:
        query_id = row["ID"]
        name = (row.get("Name") or "").lower()
        if name and self.by_name.get(name) == query_id:
            del self.by_name[name]
        self.templates.pop(query_id, None)
        ids = self.by_session.get(row.get("Session") or "")
        if ids is not None:
            ids.discard(query_id)
            if not ids:
                del self.by_session[row["Session"]]

    def put(self, txn: WriteTxn, row: Row) -> None:
        query_id = row["ID"]
        old = self.rows.get(query_id)
        if old is not None:
            self._unindex(old)
        self.rows[query_id] = row
        self._index(row)

        def undo() -> None:
            self._unindex(row)
            if old is None:
                del self.rows[query_id]
            else:
                self.rows[query_id] = old
                self._index(old)

        txn.on_undo(undo)
        txn.touch(TABLE, topic(query_id))

    def delete(self, txn: WriteTxn, query_id: str) -> Row | None:
        old = self.rows.pop(query_id, None)
        if old is None:
            return None
        self._unindex(old)

        def undo() -> None:
            self.rows[query_id] = old
            self._index(old)

        txn.on_undo(undo)
        txn.touch(TABLE, topic(query_id))
        return old

    # ------------------------------------------------------------- snapshot
    def frozen_copy(self) -> list[Row]:
        return list(self.rows.values())

    def load(self, rows: list[Row]) -> None:
        self.rows, self.by_name, self.templates, self.by_session = {}, {}, {}, {}
        for row in rows:
            self.rows[row["ID"]] = row
            self._index(row)
