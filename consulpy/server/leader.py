"""Duties that only the leader performs, each ending in a command through consensus.

- Session TTLs: a timer of 2 x TTL per session (Consul's grace multiplier), reset by renew;
  when it fires the leader proposes the session's destruction. A new leader re-arms every
  timer with the full TTL, as Consul does.
- Tombstone reaping: tombstones are kept at least `tombstone_ttl` (longer than the longest
  blocking query) and then reaped in batches.
- ACLs (when enabled): the built-ins (global-management and builtin/global-read-only
  policies, the anonymous token) and the configured initial management token are written on
  each new term if missing; expired tokens are reaped every `acl_reap_interval` (reads already
  hide them, reaping only frees the rows).
(Membership reconciliation and autopilot live in consulpy.server.membership.)
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.state import commands as C
from consulpy.util.durations import DurationError, parse_duration

if TYPE_CHECKING:
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.leader")

SESSION_TTL_MULTIPLIER = 2
TOMBSTONE_TTL = 15 * 60.0
TOMBSTONE_GRANULARITY = 30.0
ACL_REAP_INTERVAL = 30.0


class SessionTimers:
    """One timer per session with a TTL, on the leader only."""

    def __init__(self, destroy: Callable[[str], Awaitable[None]]) -> None:
        self._destroy = destroy
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def arm(self, session_id: str, ttl: str) -> None:
        if not ttl:
            return
        try:
            seconds = parse_duration(ttl)
        except DurationError:
            return
        if seconds <= 0:
            return
        self.cancel(session_id)
        loop = asyncio.get_running_loop()
        self._timers[session_id] = loop.call_later(
            seconds * SESSION_TTL_MULTIPLIER, self._expire, session_id
        )

    def _expire(self, session_id: str) -> None:
        self._timers.pop(session_id, None)
        task = asyncio.get_running_loop().create_task(self._destroy(session_id))
        task.add_done_callback(_log_task_error)

    def cancel(self, session_id: str) -> None:
        handle = self._timers.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._timers

    def __len__(self) -> int:
        return len(self._timers)


def _log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("leader task failed", error=str(task.exception()))


class LeaderDuties:
    def __init__(
        self,
        server: Server,
        *,
        tombstone_ttl: float = TOMBSTONE_TTL,
        tombstone_granularity: float = TOMBSTONE_GRANULARITY,
    ) -> None:
        self.server = server
        self.sessions = SessionTimers(self._expire_session)
        self.tombstone_ttl = tombstone_ttl
        self.tombstone_granularity = tombstone_granularity
        self._marks: collections.deque[tuple[float, int]] = collections.deque()
        self._tasks: list[asyncio.Task[Any]] = []
        # Other leader duties (the CA's bootstrap, ...) run once per leadership term.
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.active = False
        self.acl_reap_interval = ACL_REAP_INTERVAL

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self.active:
            return
        self.active = True
        loop = asyncio.get_running_loop()
        for session in self.server.store.sessions.list():
            self.sessions.arm(session.id, session.ttl)
        self._tasks.append(loop.create_task(self._tombstone_loop()))
        if self.server.acl_enabled:
            task = loop.create_task(self._acl_start())
            task.add_done_callback(_log_task_error)
            self._tasks.append(task)
        for hook in self.on_start:
            task = loop.create_task(hook())
            task.add_done_callback(_log_task_error)
            self._tasks.append(task)
        log.info("leader duties started", sessions_with_ttl=len(self.sessions))

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        self.sessions.cancel_all()
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._marks.clear()

    # -------------------------------------------------------------- sessions
    async def _expire_session(self, session_id: str) -> None:
        if not self.active or self.server.store.sessions.get(session_id) is None:
            return
        log.info("session TTL expired", session=session_id)
        await self.server.propose(C.session_destroy(session_id, ts=self.server.now()))

    def session_created(self, session_id: str) -> None:
        session = self.server.store.sessions.get(session_id)
        if self.active and session is not None:
            self.sessions.arm(session.id, session.ttl)

    def session_renewed(self, session_id: str) -> None:
        session = self.server.store.sessions.get(session_id)
        if self.active and session is not None:
            self.sessions.arm(session.id, session.ttl)

    # ------------------------------------------------------------ tombstones
    async def _tombstone_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tombstone_granularity)
            await self.reap_tombstones(time.monotonic())

    async def reap_tombstones(self, now: float) -> None:
        """Mark the current index; reap tombstones older than the oldest expired mark."""
        store = self.server.store
        self._marks.append((now, store.last_index))
        upto = 0
        while self._marks and now - self._marks[0][0] >= self.tombstone_ttl:
            upto = self._marks.popleft()[1]
        if upto and any(index <= upto for index in store.kv.tombstones.values()):
            await self.server.propose(C.tombstone_reap(upto, ts=self.server.now()))

    # -------------------------------------------------------------------- ACL
    async def _acl_start(self) -> None:
        await self.acl_builtins()
        while True:
            await asyncio.sleep(self.acl_reap_interval)
            await self.reap_acl_tokens()

    async def acl_builtins(self) -> None:
        """Write what an ACL-enabled cluster needs and does not have yet."""
        from consulpy.server.endpoints import acl as ep

        server = self.server
        acl = server.store.acl
        for pid, name, rules, desc in (
            (
                ep.GLOBAL_MANAGEMENT_ID,
                ep.GLOBAL_MANAGEMENT_NAME,
                ep.GLOBAL_MANAGEMENT_RULES,
                "Builtin Policy that grants unlimited access",
            ),
            (
                ep.READ_ONLY_ID,
                ep.READ_ONLY_NAME,
                ep.READ_ONLY_RULES,
                "Builtin Policy that grants unlimited read-only access to all components",
            ),
        ):
            if acl.policies.get(pid) is None:
                row = {"ID": pid, "Name": name, "Description": desc, "Rules": rules}
                row["Datacenters"] = []
                row["Hash"] = ep._hash(row, ep.POLICY_HASH_FIELDS)
                await server.propose(C.acl_policy_set(row, ts=server.now()))
                log.info("created ACL policy", name=name)
        if acl.tokens.get(ep.ANONYMOUS_ACCESSOR) is None:
            row = ep.management_token(
                ep.ANONYMOUS_SECRET, ep.ANONYMOUS_ACCESSOR, "Anonymous Token", server.now()
            )
            row["Policies"] = []
            row["Hash"] = ep._hash(row, ep.TOKEN_HASH_FIELDS)
            await server.propose(C.acl_token_set(row, True, ts=server.now()))
            log.info("created ACL anonymous token")
        secret = server.acl_initial_management
        # As Consul: only the primary creates it; a secondary gets tokens by replication.
        if secret and server.is_primary() and acl.tokens.get_unique(secret) is None:
            row = ep.management_token(
                secret, str(uuid.uuid4()), "Initial Management Token", server.now()
            )
            if acl.bootstrap_index:
                await server.propose(C.acl_token_set(row, True, ts=server.now()))
            else:  # as Consul: the initial management token is the bootstrap
                await server.propose(C.acl_bootstrap(row, 0, ts=server.now()))
            log.info("created ACL initial management token")

    async def reap_acl_tokens(self) -> None:
        expired = self.server.store.acl.expired_accessors(self.server.now())
        if expired:
            await self.server.propose(C.acl_token_delete(expired, ts=self.server.now()))
            log.info("reaped expired ACL tokens", count=len(expired))
