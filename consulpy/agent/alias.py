"""The agent's AliasSource: where alias checks read the health they mirror.

An alias of a service on this agent reads local state (fresher than the catalog); an alias of
another node reads the catalog. Change notifications come from local state and, on servers,
from the store's watches on the checks and services tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from consulpy.server.query import STALE, QueryMeta, QueryOptions

if TYPE_CHECKING:
    from consulpy.agent.local import LocalState
    from consulpy.state.store import StateStore


class CatalogReader(Protocol):
    """The agent's delegate (the server in-process, or the RPC client): reads only."""

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]: ...


class StoreHolder(Protocol):
    """A server: its store's watches tell alias checks when remote health changed."""

    @property
    def store(self) -> StateStore: ...


class AliasHost(Protocol):
    """What the alias source reads of the agent."""

    node_name: str
    local: LocalState
    delegate: CatalogReader
    server: StoreHolder | None


class AgentAliasSource:
    def __init__(self, agent: AliasHost) -> None:
        self.agent = agent

    async def checks_for(
        self, node: str | None, service_id: str | None
    ) -> list[dict[str, Any]] | None:
        agent = self.agent
        if node is None or node == agent.node_name:
            local = agent.local
            if service_id and service_id not in local.services:
                return None
            return [
                c.row
                for c in local.checks.values()
                if not c.row.get("ServiceID") or c.row.get("ServiceID") == service_id
            ]
        opts = QueryOptions(consistency=STALE)
        _, node_services = await agent.delegate.read(
            "Catalog.NodeServices", {"node": node, "as_list": True}, opts
        )
        if node_services is None:
            return None
        if service_id and not any(s["ID"] == service_id for s in node_services["Services"]):
            return None
        _, checks = await agent.delegate.read("Health.NodeChecks", {"node": node}, opts)
        return [
            c for c in checks or [] if not c.get("ServiceID") or c.get("ServiceID") == service_id
        ]

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        agent = self.agent
        unsubscribe_local = agent.local.on_change(callback)
        server = agent.server
        topics = [("t", "checks"), ("t", "services"), ("t", "nodes")]
        if server is not None:
            server.store.watches.register(topics, callback)

        def unsubscribe() -> None:
            unsubscribe_local()
            if server is not None:
                server.store.watches.unregister(topics, callback)

        return unsubscribe
