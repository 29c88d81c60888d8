"""`?filter=` on the server: compile the expression against the endpoint's object schema and
keep the matching elements. Compiled filters are cached: clients repeat the same expression on
every blocking poll."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from consulpy.filter import FilterError, compile_filter, schemas

# Which object each endpoint filters (the spec's filter table).
SCHEMAS = {
    "node": schemas.NODE,
    "catalog_service": schemas.CATALOG_SERVICE,
    "node_service": schemas.NODE_SERVICE,
    "agent_service": schemas.AGENT_SERVICE,
    "health_check": schemas.HEALTH_CHECK,
    "service_entry": schemas.SERVICE_ENTRY,
}


@lru_cache(maxsize=256)
def _compiled(expr: str, schema: str):  # type: ignore[no-untyped-def]
    return compile_filter(expr, schema=SCHEMAS[schema])


def _filter(expr: str, schema: str):  # type: ignore[no-untyped-def]
    try:
        return _compiled(expr, schema)
    except FilterError as exc:
        raise ValueError(str(exc)) from exc


def filter_items(items: list[Any], expr: str, schema: str) -> list[Any]:
    """Keep the matching elements; ValueError (go-bexpr-like detail) for a bad expression."""
    return _filter(expr, schema).apply(items)


def filter_map(mapping: dict[str, Any], expr: str, schema: str) -> dict[str, Any]:
    """Keep the entries whose value matches (agent/services, agent/checks)."""
    return _filter(expr, schema).apply_map(mapping)
