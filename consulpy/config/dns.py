"""Checks and normal forms for the DNS settings (domain, alt_domain, recursors, dns_config).

Consul lower-cases the domains and makes them fully qualified, and refuses a recursor it
cannot parse with `invalid recursor address`; the DNS server relies on these normal forms.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def normalise_domain(text: str) -> str:
    """`Consul` and `consul.` both become `consul.`; ValueError for an unusable name."""
    name = text.strip().lower()
    if not name.endswith("."):
        name += "."
    labels = name[:-1].split(".")
    if name == "." or any(not label or len(label) > 63 for label in labels) or len(name) > 253:
        raise ValueError(f"invalid domain {text!r}")
    return name


def normalise_recursor(text: str) -> str:
    """`IP` or `IP:port` or `[IPv6]:port` (bare IPv6 too) as `host:port` text, port 53 by
    default; ValueError `invalid recursor address` otherwise (templates included)."""
    raw = text.strip()
    host, port = raw, 53
    try:
        if raw.startswith("["):
            close = raw.index("]")
            host = raw[1:close]
            rest = raw[close + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError
                port = int(rest[1:])
        elif raw.count(":") == 1:
            host, port_text = raw.split(":")
            port = int(port_text)
        ip = ipaddress.ip_address(host)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid recursor address {text!r}") from None
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def normalise_recursors(items: list[str]) -> list[str]:
    """Each normalised, duplicates dropped (first one kept), order kept."""
    out: list[str] = []
    for item in items:
        value = normalise_recursor(item)
        if value not in out:
            out.append(value)
    return out


def check_dns_config(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for dns_config values that are well-typed but unusable."""
    errors: list[tuple[str, str]] = []
    for key, value in (config.get("service_ttl") or {}).items():
        if value < 0:
            errors.append((f"dns_config.service_ttl.{key}", "TTL must not be negative"))
        if "*" in key[:-1]:
            errors.append(
                (f"dns_config.service_ttl.{key}", "a wildcard '*' may only end the service name")
            )
    for key in ("node_ttl", "recursor_timeout", "max_stale", "cache_max_age"):
        if config.get(key, 0) < 0:
            errors.append((f"dns_config.{key}", "must not be negative"))
    if config.get("recursor_timeout", 1) == 0:
        errors.append(("dns_config.recursor_timeout", "must be greater than 0"))
    return errors


def dns_config_warnings(config: dict[str, Any]) -> list[str]:
    """What the user should know about accepted keys that change nothing in consulpy."""
    out = []
    if config.get("use_cache") or config.get("cache_max_age"):
        out.append(
            "dns_config.use_cache/cache_max_age: consulpy always answers DNS from its own cache, "
            "dropped as soon as the catalog changes, so answers are never older than that"
        )
    if config.get("prefer_namespace"):
        out.append("dns_config.prefer_namespace is deprecated and has no effect outside Enterprise")
    return out
