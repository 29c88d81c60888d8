"""Combining typed sources in order, remembering which source set what.

The rules are Consul's: structs merge field by field, maps are overlaid key by key, lists are
concatenated, and any other value is replaced by the later source. The `Provenance` record lets
an error found only after merging (say `bootstrap_expect` on a client) name the file that set
the offending value.
"""

from __future__ import annotations

from typing import Any

from consulpy.config.schema import Struct, join


class Provenance:
    """Which source last set each key path."""

    def __init__(self) -> None:
        self._origin: dict[str, str] = {}

    def record(self, path: str, source: str) -> None:
        self._origin[path] = source

    def origin(self, path: str) -> str | None:
        """The source that set `path` (or, failing that, its closest recorded parent)."""
        while path:
            found = self._origin.get(path)
            if found is not None:
                return found
            if path.endswith("]"):  # a list element: the list's origin
                path = path[: path.rindex("[")]
                continue
            path = path.rpartition(".")[0]
        return None


def merge_into(
    target: dict[str, Any],
    fragment: dict[str, Any],
    spec: Struct,
    source: str,
    provenance: Provenance,
    path: str = "",
) -> None:
    """Merge one typed source into `target` (mutated), recording provenance."""
    for key, value in fragment.items():
        field = spec.fields[key]
        where = join(path, key)
        if field.merge == "struct" and isinstance(field, Struct):
            merge_into(target.setdefault(key, {}), value, field, source, provenance, where)
            continue
        if field.merge == "concat":
            target[key] = [*target.get(key, []), *value]
        elif field.merge == "overlay":
            target[key] = {**target.get(key, {}), **value}
            for sub in value:
                provenance.record(join(where, sub), source)
        else:
            target[key] = value
        provenance.record(where, source)
