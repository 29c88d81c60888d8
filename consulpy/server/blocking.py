"""Waiting on watches from asyncio (the store's watch registry is callback based), and
sharing one wait among identical blocking queries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import Any

import structlog

from consulpy.state.watch import WatchRegistry, WatchSet

log = structlog.get_logger("consulpy.server.blocking")

# What answers a blocking query straight from the driver's pass over its group: called with the
# shared outcome, it sends the whole answer itself and returns True (the caller's handler then
# only unwinds), or returns False (the handler answers as usual). Waking thousands of parked
# handlers one by one and answering each through the web framework is what makes a large fan-out
# slow; this lets the last watcher be answered before the first handler even resumes.
Answer = Callable[[Any], bool]
# Set by the HTTP layer around one delegate read; `Server.read` takes it (and clears it, so that
# no nested read answers with another result) and hands it to the shared wait.
EARLY_ANSWER: ContextVar[Answer | None] = ContextVar("early_answer", default=None)


async def wait_for_change(registry: WatchRegistry, ws: WatchSet, limit: float) -> bool:
    """Wait until one of the topics in `ws` is notified (True) or `limit` seconds pass (False).

    Must be called right after the read that filled `ws`, with no await in between, so no
    write can slip between the read and the registration.
    """
    if limit <= 0:
        return False
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def settle(changed: bool) -> None:
        if not future.done():
            future.set_result(changed)

    def fire() -> None:
        settle(True)

    topics = list(ws.topics)
    registry.register(topics, fire)
    handle = loop.call_later(limit, settle, False)
    try:
        return await future
    finally:
        handle.cancel()
        registry.unregister(topics, fire)


Evaluate = Callable[[WatchSet], tuple[int, Any]]


class _Group:
    """One shared wait: the members waiting, and what the driver last saw."""

    __slots__ = ("error", "fresh", "latest", "members", "resolved", "task")

    def __init__(self) -> None:
        # Each parked query, and what answers it from the driver's pass (None: its handler).
        self.members: dict[asyncio.Future[None], Answer | None] = {}
        self.latest: Any = None  # the last outcome the driver evaluated
        self.fresh = False  # no write touched what `latest` read since
        self.resolved = False  # `latest` has an index above the group's
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None


class SharedWaits:
    """Blocking queries with the same key (read, arguments, token, consistency, index) share
    one registration in the watch registry and one evaluation per wakeup.

    Without it, N identical watchers mean N waiters woken by one write, N evaluations and N
    encodings, which is what makes thousands of watchers of one service slow (hashicorp/consul
    issues 4984, 5050). The key must hold everything the result depends on, the token above
    all: members get the very same result object.
    """

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group] = {}
        # Test hooks: evaluations made by drivers, driver wakeups by the registry, and members
        # answered from the driver's pass.
        self.evaluations = 0
        self.wakeups = 0
        self.early_answers = 0  # members answered from the driver's pass

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._groups

    def waiting(self) -> int:
        """Blocking queries parked in a shared wait right now (a test and debug hook)."""
        return sum(len(group.members) for group in self._groups.values())

    async def wait(
        self,
        key: Hashable,
        min_index: int,
        evaluate: Evaluate,
        registry: WatchRegistry,
        limit: float,
        answer: Answer | None = None,
    ) -> tuple[bool, Any]:
        """Wait up to `limit` seconds for the shared evaluation of `key` to reach an index above
        `min_index`. Returns (True, outcome) then; (False, outcome) on timeout when the driver's
        last outcome is still current, (False, None) when the caller must evaluate itself.
        `answer`, if given, is called with the outcome by the driver the moment it resolves
        (before this coroutine resumes); it must not raise."""
        group = self._groups.get(key)
        if group is None:
            group = _Group()
            self._groups[key] = group
            group.task = asyncio.create_task(self._drive(key, group, min_index, evaluate, registry))
        loop = asyncio.get_running_loop()
        mine: asyncio.Future[None] = loop.create_future()
        group.members[mine] = answer
        handle = loop.call_later(limit, _settle, mine)
        try:
            await mine
        finally:
            handle.cancel()
            group.members.pop(mine, None)
            if not group.members and not group.resolved:
                self._drop(key, group)
        if group.error is not None:
            raise group.error
        if group.resolved:
            return True, group.latest
        return False, (group.latest if group.fresh else None)

    def _drop(self, key: Hashable, group: _Group) -> None:
        if self._groups.get(key) is group:
            del self._groups[key]
        if group.task is not None and not group.task.done():
            group.task.cancel()

    async def _drive(
        self,
        key: Hashable,
        group: _Group,
        min_index: int,
        evaluate: Evaluate,
        registry: WatchRegistry,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                ws = WatchSet()
                index, outcome = evaluate(ws)
                self.evaluations += 1
                group.latest = outcome
                group.fresh = True
                if index > min_index:
                    group.resolved = True
                    break
                woken: asyncio.Future[None] = loop.create_future()

                def fire(woken: asyncio.Future[None] = woken) -> None:
                    group.fresh = False
                    _settle(woken)

                topics = list(ws.topics)
                registry.register(topics, fire)
                try:
                    await woken
                finally:
                    registry.unregister(topics, fire)
                self.wakeups += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every member raises it: they share the identity
            group.error = exc
        if self._groups.get(key) is group:
            del self._groups[key]
        # Members that can be answered from here are answered first, in one pass; then every
        # member's coroutine is woken (to unwind, or to answer itself).
        if group.resolved and group.error is None:
            latest = group.latest
            answered = 0
            for member, answer in group.members.items():
                if answer is not None and not member.done():
                    try:
                        answered += answer(latest)
                    except Exception:  # a defect: that member's handler answers instead
                        log.exception("early answer to a blocking query failed")
            self.early_answers += answered
        for member in group.members:
            _settle(member)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
