"""Replication from the primary datacenter, run by a secondary datacenter's leader.

As in Consul, one datacenter is the primary (`primary_datacenter`, by default a server's own
datacenter): it holds the authority over what is global to the federation. A secondary's
leader keeps copies of it with one loop per kind, each a blocking query against the primary
(through the datacenter router) followed by a diff applied through Raft here:

- config entries (service-intentions included, so intentions too);
- ACL policies and roles, and global tokens (`Local: false`) when token replication is on
  (`acl.enable_token_replication`), with the replication token (`acl.tokens.replication`);
- the Connect CA: the primary's roots become ours, and our intermediate (our own key, signed
  by the primary's active root) signs this datacenter's leaves.

A failed round backs off (doubling up to a minute) and is reported (LastError,
LastErrorMessage); what was replicated stays served meanwhile. Writes of these objects in a
secondary are forwarded to the primary by the server (`forward_to_primary`), so the copies
only ever change by replication.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.server.query import QueryOptions
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.endpoints.request import Request
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.replication")

MIN_BACKOFF = 0.5
MAX_BACKOFF = 60.0
BLOCKING_WAIT = 300.0
ZERO_TIME = "0001-01-01T00:00:00Z"

# Writes a secondary sends to the primary (Consul forwards these with the primary as the
# target datacenter). Token writes are global unless they concern a local token.
PRIMARY_WRITES = frozenset(
    {
        "ConfigEntry.Apply",
        "ConfigEntry.Delete",
        "Intention.Apply",
        "ACL.PolicySet",
        "ACL.PolicyDelete",
        "ACL.RoleSet",
        "ACL.RoleDelete",
        "ConnectCA.ConfigurationSet",
    }
)
TOKEN_WRITES = frozenset({"ACL.TokenSet", "ACL.TokenDelete", "ACL.TokenClone"})


def read_from_primary(server: Server, name: str, request: Request[Any]) -> bool:
    """Whether a read received by a secondary is answered by the primary: a config entry read
    asking for the primary's copy (see ConfigEntryGet.primary), or the resolution of a secret
    this datacenter does not know (a global token not replicated yet, or never: without
    token replication), as Consul's secondaries resolve such tokens in the primary."""
    # The name first: this runs for every read, and most are neither.
    if name == "ConfigEntry.Get":
        return not server.is_primary() and bool(getattr(request.payload, "primary", False))
    if name == "ACL.ResolveToken" and server.acl_enabled and not server.is_primary():
        secret = str(getattr(request.payload, "secret", "") or "")
        return bool(secret) and server.store.acl.token_by_secret(secret, server.clock()) is None
    return False


def primary_answer(name: str, result: Any) -> Any:
    """What a secondary keeps of the primary's answer to a read `read_from_primary` sent
    there: not the primary's local tokens, which are valid only in their datacenter."""
    if name == "ACL.ResolveToken" and result and (result.get("Token") or {}).get("Local"):
        return None
    return result


def forward_to_primary(server: Server, name: str, request: Request[Any]) -> bool:
    """Whether a write received by a secondary belongs to the primary."""
    if server.is_primary():
        return False
    if name in PRIMARY_WRITES:
        return True
    if name not in TOKEN_WRITES:
        return False
    payload = request.payload
    if name == "ACL.TokenSet":
        body = payload.token
        if "Local" in body:
            return not body.get("Local")
        existing = server.store.acl.token(str(body.get("AccessorID") or ""))
        return existing is None or not existing.get("Local")
    accessor = payload.id if name == "ACL.TokenDelete" else payload.accessor
    existing = server.store.acl.token(str(accessor or ""))
    return existing is None or not existing.get("Local")


def _rfc3339(ts: float) -> str:
    when = dt.datetime.fromtimestamp(ts, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LoopStatus:
    """What a replication loop reports (Consul's ACLReplicationStatus fields)."""

    running: bool = False
    replicated_index: int = 0
    last_success: float = 0.0
    last_error: float = 0.0
    last_error_message: str = ""
    rounds: int = 0


def _unstamped(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("CreateIndex", "ModifyIndex")}


class Replicator:
    def __init__(
        self,
        server: Server,
        *,
        token_replication: bool = False,
        replication_token: Callable[[], str] | None = None,
    ) -> None:
        self.server = server
        self.token_replication = token_replication
        self.replication_token = replication_token or (lambda: "")
        self.status: dict[str, LoopStatus] = {}
        self._tasks: list[asyncio.Task[Any]] = []

    # --------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        """Leader hook: start the loops a secondary needs (none in the primary)."""
        server = self.server
        if server.is_primary():
            return
        loops: list[tuple[str, Callable[[int], Awaitable[int]]]] = [
            ("config-entries", self._config_entries)
        ]
        if server.acl_enabled:
            loops.append(("acl-policies", lambda i: self._acl_table("policies", i)))
            loops.append(("acl-roles", lambda i: self._acl_table("roles", i)))
            if self.token_replication:
                loops.append(("acl-tokens", lambda i: self._acl_table("tokens", i)))
        if server.ca.enabled:
            loops.append(("connect-ca", self._ca_roots))
        try:
            await asyncio.gather(*(self._loop(name, step) for name, step in loops))
        finally:
            for status in self.status.values():
                status.running = False

    async def _loop(self, name: str, step: Callable[[int], Awaitable[int]]) -> None:
        status = self.status.setdefault(name, LoopStatus())
        status.running = True
        index = 0
        backoff = MIN_BACKOFF
        log.info("replication started", kind=name, source=self.server.primary_datacenter)
        while True:
            try:
                new_index = await step(index)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status.last_error = time.time()
                status.last_error_message = str(exc) or type(exc).__name__
                log.warning("replication round failed", kind=name, error=status.last_error_message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                index = 0  # start over with a full read
                continue
            backoff = MIN_BACKOFF
            # An index that went backwards (the primary restored a snapshot): read all again.
            index = new_index if new_index >= index else 0
            status.replicated_index = new_index
            status.last_success = time.time()
            status.rounds += 1

    async def _read_primary(self, name: str, args: dict[str, Any], index: int) -> Any:
        server = self.server
        opts = QueryOptions(index=index, wait=BLOCKING_WAIT if index else 0.0)
        meta, result = await server.read_in(
            server.primary_datacenter, name, args, opts, self._token()
        )
        return meta.index, result

    def _token(self) -> str:
        return self.replication_token() or self.server.agent_token

    # ------------------------------------------------------------ config entries
    async def _config_entries(self, index: int) -> int:
        server = self.server
        new_index, remote = await self._read_primary("ConfigEntry.List", {"kind": None}, index)
        want = {(e["Kind"], e["Name"]): _unstamped(e) for e in remote or []}
        have = {(e["Kind"], e["Name"]): e for e in server.store.connect.list_entries(None)}
        for key, entry in want.items():
            current = have.get(key)
            if current is None or _unstamped(current) != entry:
                await server.propose(C.config_entry_set(entry, ts=server.now()))
        for kind, name in have.keys() - want.keys():
            await server.propose(C.config_entry_delete(kind, name, ts=server.now()))
        return int(new_index)

    # --------------------------------------------------------------------- ACL
    async def _acl_table(self, table: str, index: int) -> int:
        server = self.server
        new_index, remote = await self._read_primary("ACL.ReplicationRows", {"table": table}, index)
        acl = server.store.acl
        key = "AccessorID" if table == "tokens" else "ID"
        rows = {"policies": acl.policies, "roles": acl.roles, "tokens": acl.tokens}[table]
        want = {str(r[key]).lower(): _unstamped(r) for r in remote or []}
        have = {
            str(r[key]).lower(): r
            for r in rows.list()
            if not (table == "tokens" and r.get("Local"))
        }
        now = server.now()
        gone = list(have.keys() - want.keys())
        # Deletions first: a token the primary replaced may hold a secret the new one takes.
        if table == "tokens" and gone:
            await server.propose(C.acl_token_delete(gone, ts=now))
        for rid in gone if table != "tokens" else ():
            delete = C.acl_policy_delete if table == "policies" else C.acl_role_delete
            await server.propose(delete(have[rid]["ID"], ts=now))
        for rid, row in want.items():
            current = have.get(rid)
            if current is not None and _unstamped(current) == row:
                continue
            if table == "policies":
                await self._replace_named(rows, row, C.acl_policy_delete)
                await server.propose(C.acl_policy_set(row, ts=now))
            elif table == "roles":
                await self._replace_named(rows, row, C.acl_role_delete)
                await server.propose(C.acl_role_set(row, ts=now))
            else:
                exists = acl.tokens.get(row["AccessorID"]) is not None
                await server.propose(C.acl_token_set(row, not exists, ts=now))
        return int(new_index)

    async def _replace_named(self, rows: Any, row: dict[str, Any], delete: Any) -> None:
        """A local row holding the name the primary's row takes goes first (the primary
        is the authority on names: the builtin policies of both sides share theirs)."""
        holder = rows.get_unique(row["Name"])
        if holder is not None and holder["ID"] != row["ID"]:
            await self.server.propose(delete(holder["ID"], ts=self.server.now()))

    # ---------------------------------------------------------------------- CA
    async def _ca_roots(self, index: int) -> int:
        server = self.server
        new_index, roots = await self._read_primary("ConnectCA.Roots", {}, index)

        async def signer(csr: str) -> str:
            from consulpy.server.endpoints.connect_ca import CASign

            return str(
                await server.apply_in(
                    server.primary_datacenter,
                    "ConnectCA.SignIntermediate",
                    CASign(csr=csr),
                    self._token(),
                )
            )

        await server.ca.adopt_primary_roots(roots or {}, signer)
        return int(new_index)

    # ------------------------------------------------------------------ status
    def acl_status(self) -> dict[str, Any]:
        """Consul's ACLReplicationStatus, from this leader's loops."""
        server = self.server
        enabled = server.acl_enabled and not server.is_primary()
        names = ["acl-policies", "acl-roles"] + (["acl-tokens"] if self.token_replication else [])
        loops = [self.status.get(n) for n in names]
        running = enabled and all(s is not None and s.running for s in loops)
        present = [s for s in loops if s is not None]
        last_success = min((s.last_success for s in present), default=0.0)
        last_error = max((s.last_error for s in present), default=0.0)
        message = ""
        if present:
            latest = max(present, key=lambda s: s.last_error)
            message = latest.last_error_message if latest.last_error > last_success else ""

        def index(name: str) -> int:
            status = self.status.get(name)
            return status.replicated_index if status is not None else 0

        return {
            "Enabled": enabled,
            "Running": running,
            "SourceDatacenter": server.primary_datacenter if enabled else "",
            "ReplicationType": (
                ("tokens" if self.token_replication else "policies") if enabled else ""
            ),
            "ReplicatedIndex": index("acl-policies"),
            "ReplicatedRoleIndex": index("acl-roles"),
            "ReplicatedTokenIndex": index("acl-tokens"),
            "LastSuccess": _rfc3339(last_success) if last_success else ZERO_TIME,
            "LastError": _rfc3339(last_error) if last_error else ZERO_TIME,
            "LastErrorMessage": message,
        }
