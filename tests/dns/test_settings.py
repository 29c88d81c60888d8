"""The DNS settings as the configuration loader checks and normalises them."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError, load_agent_config
from consulpy.dns.settings import DNSSettings


def load(*flags: str, **config: object) -> DNSSettings:
    cfg = load_agent_config(["-dev", *flags], [config] if config else [])
    return DNSSettings.from_agent_config(cfg)


def test_domains_are_lower_case_and_fully_qualified() -> None:
    s = load("-domain=Example", "-alt-domain=ALT.test")
    assert (s.domain, s.alt_domain) == ("example.", "alt.test.")


def test_recursors_normalised_and_deduplicated() -> None:
    s = load("-recursor=8.8.8.8", "-recursor=8.8.8.8:53", "-recursor=::1", "-recursor=[::1]:5353")
    assert s.recursors == (("8.8.8.8", 53), ("::1", 53), ("::1", 5353))


@pytest.mark.parametrize("bad", ["bogus", "1.2.3.4:0", "1.2.3.4:x", "{{ GetPrivateIP }}"])
def test_invalid_recursor_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid recursor address"):
        load(f"-recursor={bad}")


def test_dns_config_keys_are_read() -> None:
    s = load(
        dns_config={
            "allow_stale": False,
            "max_stale": "10s",
            "node_ttl": "7s",
            "service_ttl": {"*": "3s"},
            "only_passing": True,
            "enable_truncate": True,
            "udp_answer_limit": 5,
            "a_record_limit": 2,
            "recursor_strategy": "random",
            "recursor_timeout": "1s",
            "disable_compression": True,
            "enable_additional_node_meta_txt": False,
            "soa": {"refresh": 1, "retry": 2, "expire": 3, "min_ttl": 4},
        }
    )
    assert (s.allow_stale, s.max_stale, s.node_ttl, s.service_ttl) == (False, 10, 7, {"*": 3})
    assert (s.only_passing, s.enable_truncate, s.udp_answer_limit, s.a_record_limit) == (
        True,
        True,
        5,
        2,
    )
    assert (s.recursor_strategy, s.recursor_timeout, s.disable_compression) == ("random", 1, True)
    assert not s.enable_additional_node_meta_txt
    assert (s.soa.refresh, s.soa.retry, s.soa.expire, s.soa.min_ttl) == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"recursor_strategy": "fastest"}, "recursor_strategy"),
        ({"udp_answer_limit": -1}, "udp_answer_limit"),
        ({"recursor_timeout": "0s"}, "recursor_timeout"),
        ({"service_ttl": {"a*b": "1s"}}, "wildcard"),
    ],
)
def test_bad_dns_config_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(dns_config=config)


def test_same_alt_domain_is_refused() -> None:
    with pytest.raises(ConfigError, match="alt_domain"):
        load("-alt-domain=consul")


def test_keys_without_effect_warn() -> None:
    cfg = load_agent_config(
        ["-dev"], [{"dns_config": {"use_cache": True, "prefer_namespace": True}}]
    )
    assert any("use_cache" in w for w in cfg.warnings)
    assert any("prefer_namespace" in w for w in cfg.warnings)
    assert not any("dns_config" in w for w in load_agent_config(["-dev"]).warnings)
