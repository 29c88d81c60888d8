"""Consul's `?filter=` expression language (HashiCorp go-bexpr), over JSON-shaped results.

    from consulpy.filter import compile_filter, schemas

    f = compile_filter('Service.Meta.env == "prod" and "v1" in Service.Tags',
                       schema=schemas.SERVICE_ENTRY)     # raises FilterError
    f.apply(entries)            # the matching elements of a list, order kept
    f.apply_map(agent_services) # the entries of a map whose value matches
    f.matches(obj)              # one object

`str(FilterError)` is the detail Consul prints after `Failed to create boolean expression
evaluator: `. See docs/filtering.md for the language and how it differs from go-bexpr.
"""

from consulpy.filter import schemas
from consulpy.filter.errors import FilterError
from consulpy.filter.filter import Filter, compile_filter
from consulpy.filter.schema import ListOf, MapOf, SchemaType, struct

__all__ = [
    "Filter",
    "FilterError",
    "ListOf",
    "MapOf",
    "SchemaType",
    "compile_filter",
    "schemas",
    "struct",
]
