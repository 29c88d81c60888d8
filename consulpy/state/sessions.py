"""The sessions table and its indexes (by node, by check).

A session ties locks on KV keys to the health of a node and of checks. Rows never change once
created (Consul's sessions are immutable: renewals only reset a timer on the leader), so
CreateIndex == ModifyIndex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consulpy.state.txn import WriteTxn

BEHAVIOR_RELEASE = "release"
BEHAVIOR_DELETE = "delete"


@dataclass(slots=True)
class Session:
    id: str
    name: str
    node: str
    lock_delay: int  # nanoseconds, as Consul renders it
    behavior: str
    ttl: str  # as supplied by the user ("30s"), "" for none
    node_checks: list[str] | None
    service_checks: list[str] | None  # check IDs of service checks on `node`
    checks: list[str] | None  # legacy field, kept only when Consul keeps it
    create_index: int
    modify_index: int

    def all_checks(self) -> list[str]:
        out: list[str] = []
        for group in (self.node_checks, self.checks, self.service_checks):
            if group:
                out.extend(c for c in group if c not in out)
        return out

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ID": self.id,
            "Name": self.name,
            "Node": self.node,
            "LockDelay": self.lock_delay,
            "Behavior": self.behavior,
            "TTL": self.ttl,
            "NodeChecks": list(self.node_checks) if self.node_checks is not None else None,
            "ServiceChecks": (
                [{"ID": c, "Namespace": ""} for c in self.service_checks]
                if self.service_checks is not None
                else None
            ),
        }
        if self.checks:
            out["Checks"] = list(self.checks)
        out["CreateIndex"] = self.create_index
        out["ModifyIndex"] = self.modify_index
        return out

    def dump(self) -> list[Any]:
        return [
            self.id,
            self.name,
            self.node,
            self.lock_delay,
            self.behavior,
            self.ttl,
            self.node_checks,
            self.service_checks,
            self.checks,
            self.create_index,
            self.modify_index,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> Session:
        return cls(*row)


class SessionTable:
    def __init__(self) -> None:
        self.rows: dict[str, Session] = {}
        self.by_node: dict[str, set[str]] = {}
        self.by_check: dict[tuple[str, str], set[str]] = {}

    def get(self, sid: str) -> Session | None:
        return self.rows.get(sid)

    def list(self) -> list[Session]:
        return sorted(self.rows.values(), key=lambda s: s.id)

    def for_node(self, node: str) -> list[Session]:
        return sorted((self.rows[s] for s in self.by_node.get(node, ())), key=lambda s: s.id)

    def for_check(self, node: str, check_id: str) -> list[str]:
        return sorted(self.by_check.get((node, check_id), ()))

    def _index(self, session: Session) -> None:
        self.by_node.setdefault(session.node, set()).add(session.id)
        for check in session.all_checks():
            self.by_check.setdefault((session.node, check), set()).add(session.id)

    def _unindex(self, session: Session) -> None:
        for mapping, key in [(self.by_node, session.node)] + [
            (self.by_check, (session.node, c)) for c in session.all_checks()
        ]:
            ids = mapping.get(key)  # type: ignore[attr-defined]
            if ids is not None:
                ids.discard(session.id)
                if not ids:
                    del mapping[key]  # type: ignore[attr-defined]

    def insert(self, txn: WriteTxn, session: Session) -> None:
        self.rows[session.id] = session
        self._index(session)

        def undo() -> None:
            del self.rows[session.id]
            self._unindex(session)

        txn.on_undo(undo)
        txn.touch("sessions", ("session", session.id))

    def remove(self, txn: WriteTxn, sid: str) -> Session | None:
        session = self.rows.pop(sid, None)
        if session is None:
            return None
        self._unindex(session)

        def undo() -> None:
            self.rows[session.id] = session
            self._index(session)

        txn.on_undo(undo)
        txn.touch("sessions", ("session", sid))
        return session

    def dump(self) -> list[list[Any]]:
        return [s.dump() for s in self.rows.values()]

    def load(self, rows: list[list[Any]]) -> None:
        self.rows = {}
        self.by_node = {}
        self.by_check = {}
        for row in rows:
            session = Session.load(row)
            self.rows[session.id] = session
            self._index(session)

    def frozen_copy(self) -> list[Session]:
        return list(self.rows.values())
