"""Envoy matchers from Consul's HTTP match spellings, shared by RBAC permissions (intention
``Permissions[].HTTP``) and routes (service-router ``Match.HTTP``)."""

from __future__ import annotations

from typing import Any


def _string_match(spec: dict[str, Any]) -> dict[str, Any] | None:
    for key, matcher in (("Exact", "exact"), ("Prefix", "prefix"), ("Suffix", "suffix")):
        if spec.get(key):
            return {matcher: spec[key]}
    if spec.get("Regex"):
        return {"safe_regex": {"regex": spec["Regex"]}}
    return None


def header_matcher(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A ``HeaderMatcher`` from ``{Name, Exact|Prefix|Suffix|Regex|Present, Invert}``; None
    for a spec that matches nothing (config-entry validation refuses those)."""
    out: dict[str, Any] = {"name": spec["Name"]}
    string_match = _string_match(spec)
    if string_match is not None:
        out["string_match"] = string_match
    elif spec.get("Present"):
        out["present_match"] = True
    else:
        return None
    if spec.get("Invert"):
        out["invert_match"] = True
    return out


def methods_matcher(methods: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``:method`` equal to any of ``methods`` (a StringMatcher regex matches the whole value)."""
    return {"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(methods)}}}


def query_matcher(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A ``QueryParameterMatcher`` from ``{Name, Exact|Regex|Present}``."""
    out: dict[str, Any] = {"name": spec["Name"]}
    if spec.get("Exact"):
        out["string_match"] = {"exact": spec["Exact"]}
    elif spec.get("Regex"):
        out["string_match"] = {"safe_regex": {"regex": spec["Regex"]}}
    elif spec.get("Present"):
        out["present_match"] = True
    else:
        return None
    return out
