"""Go's url.Values.Encode(): Consul echoes a re-encoded query string in some errors
("Conflicting flags: acquire=x&cas=1")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote_plus


def go_query_escape(text: str) -> str:
    return quote_plus(text, safe="-_.~")


def go_query_encode(query: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    items = query.items() if isinstance(query, Mapping) else query
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    return "&".join(
        f"{go_query_escape(k)}={go_query_escape(v)}" for k in sorted(grouped) for v in grouped[k]
    )
