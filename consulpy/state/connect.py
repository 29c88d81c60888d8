"""Connect state: config entries (intentions live in `service-intentions` entries) and the CA
(configuration, roots with their signing keys, the serial counter).

Config entries are keyed by (kind, name). Topics fired on change: ("ce", kind) and
("ce", kind, name) for entries, ("t", "connect_ca") for the CA.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.txn import WriteTxn

Entry = dict[str, Any]


class ConnectTables:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}
        self.ca_config: dict[str, Any] | None = None
        self.ca_roots: list[dict[str, Any]] = []
        self.ca_serial = 0

    # ----------------------------------------------------------- config entries
    def entry(self, kind: str, name: str) -> Entry | None:
        return self.entries.get((kind, name))

    def list_entries(self, kind: str | None = None) -> list[Entry]:
        return [self.entries[key] for key in sorted(self.entries) if kind is None or key[0] == kind]

    def put_entry(self, txn: WriteTxn, entry: Entry) -> Entry:
        key = (entry["Kind"], entry["Name"])
        old = self.entries.get(key)
        row = dict(entry)
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index
        self.entries[key] = row

        def undo() -> None:
            if old is None:
                del self.entries[key]
            else:
                self.entries[key] = old

        txn.on_undo(undo)
        txn.touch("config_entries", ("ce", key[0]), ("ce", key[0], key[1]))
        return row

    def delete_entry(self, txn: WriteTxn, kind: str, name: str) -> bool:
        key = (kind, name)
        old = self.entries.pop(key, None)
        if old is None:
            return False

        def undo() -> None:
            self.entries[key] = old

        txn.on_undo(undo)
        txn.touch("config_entries", ("ce", kind), ("ce", kind, name))
        return True

    # ------------------------------------------------------------------- CA
    def set_ca(self, txn: WriteTxn, config: dict[str, Any], roots: list[dict[str, Any]]) -> None:
        old = (self.ca_config, self.ca_roots)
        config = dict(config)
        config["CreateIndex"] = (
            self.ca_config["CreateIndex"] if self.ca_config is not None else txn.index
        )
        config["ModifyIndex"] = txn.index
        stamped = []
        for root in roots:
            root = dict(root)
            root.setdefault("CreateIndex", txn.index)
            root["ModifyIndex"] = txn.index
            stamped.append(root)
        self.ca_config, self.ca_roots = config, stamped

        def undo() -> None:
            self.ca_config, self.ca_roots = old

        txn.on_undo(undo)
        txn.touch("connect_ca")

    def next_serial(self, txn: WriteTxn) -> int:
        self.ca_serial += 1

        def undo() -> None:
            self.ca_serial -= 1

        txn.on_undo(undo)
        txn.tables.add("connect_ca_serial")
        return self.ca_serial

    def active_root(self) -> dict[str, Any] | None:
        for root in self.ca_roots:
            if root.get("Active"):
                return root
        return None

    # -------------------------------------------------------------- snapshot
    def dump(self) -> dict[str, Any]:
        return {
            "entries": list(self.entries.values()),
            "ca_config": self.ca_config,
            "ca_roots": list(self.ca_roots),
            "ca_serial": self.ca_serial,
        }

    def frozen_copy(self) -> dict[str, Any]:
        return self.dump()

    def load(self, data: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for entry in data.get("entries", []):
            self.entries[(entry["Kind"], entry["Name"])] = entry
        self.ca_config = data.get("ca_config")
        self.ca_roots = list(data.get("ca_roots") or [])
        self.ca_serial = int(data.get("ca_serial", 0))
