"""How the ADS server finds a proxy's snapshots and checks who may fetch them.

The server depends only on the ``ProxyLookup`` protocol: ``authorize`` (is this token allowed
to fetch this proxy's config?) and ``watch`` (an async iterator of snapshots, a new one after
every change). ``MemoryLookup`` is a complete in-memory implementation: the agent publishes
snapshots into it as its watches fire, and every stream of that proxy sees the latest one.
A slow stream skips intermediate snapshots instead of queueing them: only the newest state
matters to Envoy.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from consulpy.agent.proxysnapshot import ProxySnapshot


class AccessError(Exception):
    """A stream the lookup refuses; the server closes it with ``grpc_code`` and the text."""

    grpc_code = "PERMISSION_DENIED"


class UnknownProxy(AccessError):
    """No proxy with that ID is registered on this agent."""

    grpc_code = "NOT_FOUND"


class Unauthenticated(AccessError):
    """The token is not known."""

    grpc_code = "UNAUTHENTICATED"


class PermissionDenied(AccessError):
    """The token lacks ``service:write`` on the proxy's destination service."""

    grpc_code = "PERMISSION_DENIED"


class ProxyLookup(Protocol):
    async def authorize(self, proxy_id: str, token: str) -> None:
        """Return if ``token`` may fetch ``proxy_id``'s config, else raise an AccessError
        (UnknownProxy for an unregistered proxy)."""

    def watch(self, proxy_id: str) -> AsyncIterator[ProxySnapshot]:
        """The proxy's snapshots: the current one as soon as it is complete, then one per
        change. Ends (or raises UnknownProxy) when the proxy is deregistered."""


Authorizer = Callable[[str, str], Awaitable[None] | None]


@dataclass
class _Entry:
    snapshot: ProxySnapshot | None = None
    generation: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False

    def bump(self) -> None:
        self.generation += 1
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryLookup:
    """Latest snapshot per proxy, with change notification (see module docstring).

    ``authorizer(proxy_id, token)`` (sync or async) raises an AccessError to refuse a token;
    without one every token is accepted.
    """

    def __init__(self, authorizer: Authorizer | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        self._authorizer = authorizer

    def register(self, proxy_id: str) -> None:
        """Make ``proxy_id`` known before its first snapshot is complete (Envoy may connect;
        nothing is sent until ``publish``)."""
        self._entries.setdefault(proxy_id, _Entry())

    def publish(self, snapshot: ProxySnapshot) -> None:
        """Replace the proxy's snapshot (registering it if needed) and wake its streams."""
        entry = self._entries.setdefault(snapshot.proxy_id, _Entry())
        entry.snapshot = snapshot
        entry.bump()

    def deregister(self, proxy_id: str) -> None:
        """Forget the proxy; its open streams end."""
        entry = self._entries.pop(proxy_id, None)
        if entry is not None:
            entry.removed = True
            entry.bump()

    def current(self, proxy_id: str) -> ProxySnapshot | None:
        entry = self._entries.get(proxy_id)
        return entry.snapshot if entry else None

    def proxies(self) -> list[str]:
        return sorted(self._entries)

    async def authorize(self, proxy_id: str, token: str) -> None:
        if proxy_id not in self._entries:
            raise UnknownProxy(f'proxy "{proxy_id}" is not registered on this agent')
        if self._authorizer is not None:
            result = self._authorizer(proxy_id, token)
            if inspect.isawaitable(result):
                await result

    async def watch(self, proxy_id: str) -> AsyncIterator[ProxySnapshot]:
        entry = self._entries.get(proxy_id)
        if entry is None:
            raise UnknownProxy(f'proxy "{proxy_id}" is not registered on this agent')
        seen = 0
        while not entry.removed:
            if entry.generation != seen and entry.snapshot is not None:
                seen = entry.generation
                yield entry.snapshot
                continue
            await entry.changed.wait()
