"""Catalog tables: nodes, service instances and health checks.

Rows are dicts in Consul's wire shape (PascalCase keys, CreateIndex/ModifyIndex included),
replaced rather than mutated, so reads can hand them out and snapshots can copy cheaply.
Secondary indexes: services by node and by name, checks by node and by service.

Topics fired on change: ("t", "nodes"|"services"|"checks"), ("node", name) for anything on a
node, ("svc", name) for anything that changes what /v1/health/service/<name> returns.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.txn import WriteTxn

Row = dict[str, Any]

# Fields compared to decide whether a re-registration changed anything.
_INDEX_FIELDS = ("CreateIndex", "ModifyIndex")


def _same(a: Row, b: Row) -> bool:
    return all(a.get(k) == b.get(k) for k in set(a) | set(b) if k not in _INDEX_FIELDS)


class CatalogTables:
    def __init__(self) -> None:
        self.nodes: dict[str, Row] = {}
        self.services: dict[tuple[str, str], Row] = {}  # (node, service id) -> row
        self.checks: dict[tuple[str, str], Row] = {}  # (node, check id) -> row
        self.services_by_node: dict[str, set[str]] = {}
        self.services_by_name: dict[str, set[tuple[str, str]]] = {}
        self.checks_by_node: dict[str, set[str]] = {}
        # Mesh-capable instances by the service they front: sidecar proxies by
        # Proxy.DestinationServiceName, Connect-native instances by their own name.
        self.connect_by_dest: dict[str, set[tuple[str, str]]] = {}
        # Per-service-name index: the raft index of the last change to anything a health query
        # for that name reads (instances, their nodes, their checks).
        self.service_index: dict[str, int] = {}
        # Per-node index: the last change to the node, its services or its checks.
        self.node_index: dict[str, int] = {}

    # ----------------------------------------------------------------- reads
    def node(self, name: str) -> Row | None:
        return self.nodes.get(name)

    def node_by_id(self, node_id: str) -> Row | None:
        for row in self.nodes.values():
            if row.get("ID") and row["ID"].lower() == node_id.lower():
                return row
        return None

    def node_services(self, node: str) -> list[Row]:
        return [self.services[(node, sid)] for sid in sorted(self.services_by_node.get(node, ()))]

    def node_checks(self, node: str) -> list[Row]:
        return [self.checks[(node, cid)] for cid in sorted(self.checks_by_node.get(node, ()))]

    def service_instances(self, name: str) -> list[Row]:
        keys = sorted(self.services_by_name.get(name, ()))
        return [self.services[k] for k in keys]

    def check(self, node: str, check_id: str) -> Row | None:
        return self.checks.get((node, check_id))

    def service(self, node: str, service_id: str) -> Row | None:
        return self.services.get((node, service_id))

    # ---------------------------------------------------------------- writes
    @staticmethod
    def _bump(txn: WriteTxn, mapping: dict[str, int], key: str) -> None:
        prev = mapping.get(key)
        mapping[key] = txn.index

        def undo() -> None:
            if prev is None:
                mapping.pop(key, None)
            else:
                mapping[key] = prev

        txn.on_undo(undo)

    def _bump_service_names(self, txn: WriteTxn, names: set[str]) -> None:
        for name in names:
            if name:
                self._bump(txn, self.service_index, name)
                txn.topics.add(("svc", name))

    def _bump_node(self, txn: WriteTxn, node: str) -> None:
        self._bump(txn, self.node_index, node)
        txn.topics.add(("node", node))

    @staticmethod
    def connect_destination(svc: Row) -> str | None:
        # Tolerant of malformed rows (`Connect: 1`) that older versions let into the log:
        # such a row must not make every later write on its node fail.
        if svc.get("Kind") == "connect-proxy":
            proxy = svc.get("Proxy")
            dest = proxy.get("DestinationServiceName") if isinstance(proxy, dict) else None
            return dest if isinstance(dest, str) and dest else None
        connect = svc.get("Connect")
        if isinstance(connect, dict) and connect.get("Native"):
            return svc["Service"]
        return None

    def _names_of(self, svc: Row) -> set[str]:
        """The names whose health listings show ``svc``: its own, and for a proxy (or a
        native service) the destination's, which /v1/health/connect/<dest> lists."""
        dest = self.connect_destination(svc)
        return {svc["Service"], dest} if dest else {svc["Service"]}

    def _names_on_node(self, node: str) -> set[str]:
        names: set[str] = set()
        for sid in self.services_by_node.get(node, ()):
            names |= self._names_of(self.services[(node, sid)])
        return names

    def put_node(self, txn: WriteTxn, row: Row) -> Row:
        name = row["Node"]
        old = self.nodes.get(name)
        if old is not None and _same(old, row):
            return old
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index
        self.nodes[name] = row

        def undo() -> None:
            if old is None:
                del self.nodes[name]
            else:
                self.nodes[name] = old

        txn.on_undo(undo)
        txn.touch("nodes")
        self._bump_node(txn, name)
        self._bump_service_names(txn, self._names_on_node(name))
        return row

    def put_service(self, txn: WriteTxn, row: Row) -> Row:
        node, sid = row["Node"], row["ID"]
        key = (node, sid)
        old = self.services.get(key)
        if old is not None and _same(old, row):
            return old
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index

        def undo() -> None:
            self._index_service(key, old, row)
            if old is None:
                del self.services[key]
            else:
                self.services[key] = old

        # Undo first: should indexing fail half-way, the abort still removes the row.
        txn.on_undo(undo)
        self.services[key] = row
        self._index_service(key, row, old)
        txn.touch("services")
        self._bump_node(txn, node)
        names = {row["Service"]} | ({old["Service"]} if old is not None else set())
        for svc in (row, old):
            dest = self.connect_destination(svc) if svc is not None else None
            if dest:
                names.add(dest)
        self._bump_service_names(txn, names)
        return row

    def _index_service(self, key: tuple[str, str], new: Row | None, old: Row | None) -> None:
        node, sid = key
        if old is not None:
            for mapping, name in (
                (self.services_by_name, old.get("Service")),
                (self.connect_by_dest, self.connect_destination(old)),
            ):
                members = mapping.get(name) if name else None
                if members is not None:
                    members.discard(key)
                    if not members:
                        del mapping[name]  # type: ignore[arg-type]
            by_node = self.services_by_node.get(node)
            if by_node is not None and new is None:
                by_node.discard(sid)
                if not by_node:
                    del self.services_by_node[node]
        if new is not None:
            self.services_by_name.setdefault(new["Service"], set()).add(key)
            self.services_by_node.setdefault(node, set()).add(sid)
            dest = self.connect_destination(new)
            if dest:
                self.connect_by_dest.setdefault(dest, set()).add(key)

    def put_check(self, txn: WriteTxn, row: Row) -> tuple[Row, bool]:
        """Upsert a check. Returns (row, became_critical)."""
        node, cid = row["Node"], row["CheckID"]
        key = (node, cid)
        old = self.checks.get(key)
        if old is not None and _same(old, row):
            return old, False
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index
        self.checks[key] = row
        if old is None:
            self.checks_by_node.setdefault(node, set()).add(cid)

        def undo() -> None:
            if old is None:
                del self.checks[key]
                ids = self.checks_by_node.get(node)
                if ids is not None:
                    ids.discard(cid)
                    if not ids:
                        del self.checks_by_node[node]
            else:
                self.checks[key] = old

        txn.on_undo(undo)
        txn.touch("checks", ("check", node, cid))
        self._bump_node(txn, node)
        self._bump_for_check(txn, node, row, old)
        became_critical = row["Status"] == "critical" and (
            old is None or old["Status"] != "critical"
        )
        return row, became_critical

    def _bump_for_check(self, txn: WriteTxn, node: str, row: Row, old: Row | None) -> None:
        if row.get("ServiceID"):
            names = {row.get("ServiceName", "")}
            if old is not None:
                names.add(old.get("ServiceName", ""))
            svc = self.services.get((node, row["ServiceID"]))
            if svc is not None:
                names |= self._names_of(svc)
        else:
            # A node-level check changes the health of every service on the node.
            names = self._names_on_node(node)
        self._bump_service_names(txn, names)

    def delete_check(self, txn: WriteTxn, node: str, cid: str) -> Row | None:
        key = (node, cid)
        old = self.checks.pop(key, None)
        if old is None:
            return None
        ids = self.checks_by_node.get(node)
        if ids is not None:
            ids.discard(cid)
            if not ids:
                del self.checks_by_node[node]

        def undo() -> None:
            self.checks[key] = old
            self.checks_by_node.setdefault(node, set()).add(cid)

        txn.on_undo(undo)
        txn.touch("checks", ("check", node, cid))
        self._bump_node(txn, node)
        self._bump_for_check(txn, node, old, None)
        return old

    def delete_service(self, txn: WriteTxn, node: str, sid: str) -> Row | None:
        key = (node, sid)
        old = self.services.get(key)
        if old is None:
            return None
        del self.services[key]
        self._index_service(key, None, old)

        def undo() -> None:
            self.services[key] = old
            self._index_service(key, old, None)

        txn.on_undo(undo)
        # "service_extinction": the last time any instance went away, which is the index a
        # query for a service with no instances reports (as Consul does).
        txn.touch("services", ("svc_extinction",))
        txn.tables.add("service_extinction")
        self._bump_node(txn, node)
        names = {old["Service"]}
        dest = self.connect_destination(old)
        if dest:
            names.add(dest)
        self._bump_service_names(txn, names)
        return old

    def delete_node(self, txn: WriteTxn, name: str) -> Row | None:
        old = self.nodes.pop(name, None)
        if old is None:
            return None

        def undo() -> None:
            self.nodes[name] = old

        txn.on_undo(undo)
        txn.touch("nodes")
        self._bump_node(txn, name)
        return old

    # -------------------------------------------------------------- snapshot
    def dump(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes.values()),
            "services": list(self.services.values()),
            "checks": list(self.checks.values()),
            "service_index": list(self.service_index.items()),
            "node_index": list(self.node_index.items()),
        }

    def frozen_copy(self) -> dict[str, Any]:
        return self.dump()

    def load(self, data: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for row in data.get("nodes", []):
            self.nodes[row["Node"]] = row
        for row in data.get("services", []):
            key = (row["Node"], row["ID"])
            self.services[key] = row
            self._index_service(key, row, None)
        for row in data.get("checks", []):
            self.checks[(row["Node"], row["CheckID"])] = row
            self.checks_by_node.setdefault(row["Node"], set()).add(row["CheckID"])
        self.service_index = dict(data.get("service_index", []))
        self.node_index = dict(data.get("node_index", []))
