"""The DNS settings in typed form, built once from the agent configuration.

Every `dns_config` key is read here so none is parsed and then forgotten; the few that have no
effect in consulpy (`use_cache`, `cache_max_age`, `prefer_namespace`) are listed in
docs/compatibility.md with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.config.dns import normalise_recursors

if TYPE_CHECKING:
    from consulpy.config import AgentConfig


@dataclass(frozen=True, slots=True)
class SOAConfig:
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    min_ttl: int = 0


@dataclass(frozen=True, slots=True)
class DNSSettings:
    datacenter: str = "dc1"
    node_name: str = ""  # the agent's node: the `_agent` source of prepared queries
    # translate_wan_addrs: answers for another datacenter's instances use their `wan`
    # tagged addresses.
    translate_wan_addrs: bool = False
    domain: str = "consul."
    alt_domain: str | None = None
    recursors: tuple[tuple[str, int], ...] = ()
    allow_stale: bool = True
    max_stale: float = 87600 * 3600.0
    node_ttl: int = 0
    service_ttl: dict[str, int] = field(default_factory=dict)
    only_passing: bool = False
    enable_truncate: bool = False
    udp_answer_limit: int = 3
    a_record_limit: int = 0
    recursor_strategy: str = "sequential"
    recursor_timeout: float = 2.0
    disable_compression: bool = False
    enable_additional_node_meta_txt: bool = True
    soa: SOAConfig = field(default_factory=SOAConfig)
    # Accepted for compatibility; see the module docstring.
    use_cache: bool = False
    cache_max_age: float = 0.0
    prefer_namespace: bool = False

    @classmethod
    def from_agent_config(cls, config: AgentConfig) -> DNSSettings:
        dc: dict[str, Any] = dict(config.dns_config)
        soa = dc.get("soa") or {}
        return cls(
            datacenter=config.datacenter.lower(),
            node_name=config.node_name,
            translate_wan_addrs=bool(config.translate_wan_addrs),
            domain=config.domain,
            alt_domain=config.alt_domain,
            recursors=tuple(
                _split_hostport(r) for r in normalise_recursors(list(config.recursors))
            ),
            allow_stale=bool(dc.get("allow_stale", True)),
            max_stale=float(dc.get("max_stale", 87600 * 3600.0)),
            node_ttl=int(dc.get("node_ttl", 0)),
            service_ttl={str(k): int(v) for k, v in (dc.get("service_ttl") or {}).items()},
            only_passing=bool(dc.get("only_passing", False)),
            enable_truncate=bool(dc.get("enable_truncate", False)),
            udp_answer_limit=int(dc.get("udp_answer_limit", 3)),
            a_record_limit=int(dc.get("a_record_limit", 0)),
            recursor_strategy=str(dc.get("recursor_strategy", "sequential")),
            recursor_timeout=float(dc.get("recursor_timeout", 2.0)),
            disable_compression=bool(dc.get("disable_compression", False)),
            enable_additional_node_meta_txt=bool(dc.get("enable_additional_node_meta_txt", True)),
            soa=SOAConfig(
                refresh=int(soa.get("refresh", 3600)),
                retry=int(soa.get("retry", 600)),
                expire=int(soa.get("expire", 86400)),
                min_ttl=int(soa.get("min_ttl", 0)),
            ),
            use_cache=bool(dc.get("use_cache", False)),
            cache_max_age=float(dc.get("cache_max_age", 0.0)),
            prefer_namespace=bool(dc.get("prefer_namespace", False)),
        )

    def service_ttl_for(self, name: str) -> int:
        """Exact key first, else the longest `prefix*` key whose prefix matches, else 0."""
        name = name.lower()
        exact = self.service_ttl.get(name)
        if exact is not None:
            return exact
        best, best_len = 0, -1
        for key, ttl in self.service_ttl.items():
            if key.endswith("*") and name.startswith(key[:-1]) and len(key) > best_len:
                best, best_len = ttl, len(key)
        return best


def _split_hostport(text: str) -> tuple[str, int]:
    """`1.2.3.4:53` / `[::1]:53` (the normal form config/dns.py produces)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
