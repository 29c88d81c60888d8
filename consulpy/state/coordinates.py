"""The coordinates table: each node's last reported LAN network coordinate, per segment.

Rows are `{"Node", "Segment", "Coord"}` (Consul's shape, `Coord` in its JSON form) and are
never mutated in place, so a snapshot can keep references. Coordinates arrive in batches
from the leader (Coordinate.Update queues them); a node's coordinates go when the node goes.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.txn import WriteTxn

Row = dict[str, Any]
TABLE = "coordinates"


def topic(node: str) -> tuple[str, str]:
    return ("coord", node)


class CoordinateTable:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}

    def list(self) -> list[Row]:
        return [self.rows[k] for k in sorted(self.rows)]

    def for_node(self, node: str) -> list[Row]:
        return [self.rows[k] for k in sorted(self.rows) if k[0] == node]

    def get(self, node: str, segment: str = "") -> Row | None:
        return self.rows.get((node, segment))

    def put(self, txn: WriteTxn, row: Row) -> None:
        key = (row["Node"], row.get("Segment") or "")
        old = self.rows.get(key)
        self.rows[key] = row

        def undo() -> None:
            if old is None:
                del self.rows[key]
            else:
                self.rows[key] = old

        txn.on_undo(undo)
        txn.touch(TABLE, topic(key[0]))

    def delete_node(self, txn: WriteTxn, node: str) -> None:
        gone = {k: r for k, r in self.rows.items() if k[0] == node}
        if not gone:
            return
        for k in gone:
            del self.rows[k]
        txn.on_undo(lambda: self.rows.update(gone))
        txn.touch(TABLE, topic(node))

    def frozen_copy(self) -> list[Row]:
        return list(self.rows.values())

    def load(self, rows: list[Row]) -> None:
        self.rows = {(r["Node"], r.get("Segment") or ""): r for r in rows}
