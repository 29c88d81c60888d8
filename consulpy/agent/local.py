"""The agent's local state: services and checks registered on this agent.

This is the agent's own truth (what it was told to run), owned here and nowhere else. The
catalog on the servers is made to agree with it by anti-entropy (`consulpy.agent.sync`), which
reads the `in_sync` flags this module keeps. Services and checks registered through the API are
persisted in data_dir so they survive a restart; those from config files are re-read from the
config instead (as Consul does).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("consulpy.agent.local")

NODE_MAINT_ID = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
NODE_MAINT_DEFAULT = (
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default "
    "message."
)
SERVICE_MAINT_DEFAULT = (
    "Maintenance mode is enabled for this service, but no reason was provided. This is a "
    "default message."
)

STATE_FILE = "agent-local-state.json"
STATE_VERSION = 1


@dataclass
class LocalService:
    row: dict[str, Any]  # NodeService fields, as the catalog stores them (no indexes)
    token: str = ""
    source: str = "api"  # "api" (persisted) or "config" (re-read from the config files)
    in_sync: bool = False


@dataclass
class LocalCheck:
    row: dict[str, Any]  # HealthCheck fields, as the catalog stores them (no indexes)
    definition: dict[str, Any] = field(default_factory=dict)  # the registration body
    token: str = ""
    source: str = "api"
    in_sync: bool = False
    # Output-only changes are synced at most once per check_update_interval (Consul).
    output_dirty_since: float | None = None


class LocalState:
    def __init__(self, node_name: str, data_dir: str | None) -> None:
        self.node_name = node_name
        self.data_dir = data_dir
        self.services: dict[str, LocalService] = {}
        self.checks: dict[str, LocalCheck] = {}
        # Removed locally, not yet removed from the catalog (anti-entropy does it).
        self.deleted_services: set[str] = set()
        self.deleted_checks: set[str] = set()
        self._listeners: list[Callable[[], None]] = []
        self.version = 0  # bumped on every change
        self._waiters: list[asyncio.Future[None]] = []

    # ------------------------------------------------------------ notify
    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after every change; returns the function that unsubscribes."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def changed(self, persist: bool = True) -> None:
        self.version += 1
        if persist:
            self.save()
        for callback in self._listeners:
            callback()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_change(self, limit: float) -> None:
        """Return at the next change, or after `limit` seconds (hash-blocking endpoints)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            pass
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    # ----------------------------------------------------------- services
    def add_service(self, row: dict[str, Any], token: str = "", source: str = "api") -> None:
        self.services[row["ID"]] = LocalService(row=row, token=token, source=source)
        self.deleted_services.discard(row["ID"])
        for check in self.checks.values():
            if check.row.get("ServiceID") == row["ID"]:
                check.row["ServiceName"] = row["Service"]
                check.row["ServiceTags"] = list(row.get("Tags") or [])
                check.in_sync = False

    def remove_service(self, service_id: str) -> list[str]:
        """Remove a service and its checks; returns the removed check IDs."""
        if self.services.pop(service_id, None) is not None:
            self.deleted_services.add(service_id)
        removed = [cid for cid, c in self.checks.items() if c.row.get("ServiceID") == service_id]
        for cid in removed:
            del self.checks[cid]
        return removed

    def service_checks(self, service_id: str) -> list[LocalCheck]:
        return [c for c in self.checks.values() if c.row.get("ServiceID") == service_id]

    # ------------------------------------------------------------- checks
    def add_check(self, check: LocalCheck) -> None:
        """Register or replace a check, keeping the status and output it already had."""
        cid = check.row["CheckID"]
        old = self.checks.get(cid)
        if old is not None:
            check.row["Status"] = old.row["Status"]
            check.row["Output"] = old.row["Output"]
        sid = check.row.get("ServiceID")
        if sid and sid in self.services:
            svc = self.services[sid].row
            check.row["ServiceName"] = svc["Service"]
            check.row["ServiceTags"] = list(svc.get("Tags") or [])
        self.checks[cid] = check
        self.deleted_checks.discard(cid)

    def remove_check(self, check_id: str) -> bool:
        if self.checks.pop(check_id, None) is None:
            return False
        self.deleted_checks.add(check_id)
        return True

    def update_check(self, check_id: str, status: str, output: str) -> bool:
        """Apply a status/output; returns True if anything changed."""
        check = self.checks.get(check_id)
        if check is None:
            return False
        row = check.row
        if row["Status"] == status and row["Output"] == output:
            return False
        if row["Status"] != status:
            row["Status"] = status
            row["Output"] = output
            check.in_sync = False
            check.output_dirty_since = None
        else:
            row["Output"] = output
            if check.output_dirty_since is None:
                check.output_dirty_since = time.monotonic()
        return True

    # -------------------------------------------------------- maintenance
    def node_maintenance(self, enable: bool, reason: str) -> bool:
        if not enable:
            return self.remove_check(NODE_MAINT_ID)
        if NODE_MAINT_ID in self.checks:
            return False
        from consulpy.state.structs import check_row

        self.checks[NODE_MAINT_ID] = LocalCheck(
            row=check_row(
                Node=self.node_name,
                CheckID=NODE_MAINT_ID,
                Name="Node Maintenance Mode",
                Notes=reason or NODE_MAINT_DEFAULT,
                Status="critical",
            ),
        )
        return True

    def service_maintenance(self, service_id: str, enable: bool, reason: str) -> bool:
        cid = SERVICE_MAINT_PREFIX + service_id
        if not enable:
            return self.remove_check(cid)
        if cid in self.checks:
            return False
        from consulpy.state.structs import check_row

        svc = self.services[service_id].row
        self.checks[cid] = LocalCheck(
            row=check_row(
                Node=self.node_name,
                CheckID=cid,
                Name="Service Maintenance Mode",
                Notes=reason or SERVICE_MAINT_DEFAULT,
                Status="critical",
                ServiceID=service_id,
                ServiceName=svc["Service"],
                ServiceTags=list(svc.get("Tags") or []),
            ),
        )
        return True

    # -------------------------------------------------------- persistence
    def _path(self) -> str | None:
        return os.path.join(self.data_dir, STATE_FILE) if self.data_dir else None

    def save(self) -> None:
        """Write the API-registered services and checks (and every check's status, so TTL
        checks come back as they were) atomically: temp file, fsync, rename."""
        path = self._path()
        if path is None:
            return
        doc = {
            "version": STATE_VERSION,
            "services": [
                {"row": s.row, "token": s.token}
                for s in self.services.values()
                if s.source == "api"
            ],
            "checks": [
                {"row": c.row, "definition": c.definition, "token": c.token}
                for c in self.checks.values()
                if c.source == "api"
            ],
        }
        os.makedirs(self.data_dir, exist_ok=True)  # type: ignore[arg-type]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The persisted (services, checks) documents, for the agent to re-register."""
        path = self._path()
        if path is None or not os.path.exists(path):
            return [], []
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            log.error(
                "cannot read persisted local state; starting empty", path=path, error=str(exc)
            )
            return [], []
        return list(doc.get("services", [])), list(doc.get("checks", []))
