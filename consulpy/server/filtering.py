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
    "health_check": schemas.HEALTH_CHECK,
    "service_entry": schemas.SERVICE_ENTRY,
}


@lru_cache(maxsize=256)
def _compiled(expr: str, schema: str):  # type: ignore[no-untyped-def]
    return compile_filter(expr, schema=SCHEMAS[schema])


def filter_items(items: list[Any], expr: str, schema: str) -> list[Any]:
    """Raise ValueError (with go-bexpr-like detail) for a bad expression."""
    try:
        flt = _compiled(expr, schema)
    except FilterError as exc:
        raise ValueError(str(exc)) from exc
    return flt.apply(items)
