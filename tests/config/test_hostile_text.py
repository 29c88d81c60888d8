"""Config files cannot hold what an API request may not: lone surrogates, NaN, deep nesting
(they would break the catalog sync of every service on the agent)."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError
from consulpy.config.hcl import parse_hcl, parse_json


@pytest.mark.parametrize(
    "text",
    [
        'service { name = "s\\ud800" }',
        'node_meta { k = "v\\udc00" }',
    ],
)
def test_hcl_lone_surrogate_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="lone UTF-16 surrogate"):
        parse_hcl(text, "agent.hcl")


def test_hcl_surrogate_pair_is_one_character() -> None:
    assert parse_hcl('service { name = "x\\ud83d\\ude00" }', "a.hcl")["service"][0] == {
        "name": "x\U0001f600"
    }


@pytest.mark.parametrize(
    "text,reason",
    [
        ('{"service": {"name": "s\\ud800"}}', "lone UTF-16 surrogate"),
        ('{"session_ttl_min": NaN}', "invalid character 'N'"),
        ('{"ports": {"http": 1e400}}', "cannot unmarshal number 1e400"),
        ('{"a":' * 1000 + "1" + "}" * 1000, "exceeded max depth"),
        ('{"a": ', "invalid JSON at line 1"),
    ],
)
def test_json_config_goes_through_the_one_json_path(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_json(text, "agent.json")
