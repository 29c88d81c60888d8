"""Error texts that quote or split the way Go does: one helper for each, used everywhere."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError, load_agent_config
from consulpy.log import render_line
from consulpy.util.durations import DurationError, parse_duration_ns
from consulpy.util.goquote import go_quote
from consulpy.util.hostport import AddressError, join_host_port, split_host_port
from consulpy.xds.bootstrap import bootstrap_config


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("a\tb\r\n", '"a\\tb\\r\\n"'),
        ("\x07\x00", '"\\a\\x00"'),
        ("é\u0085", '"é\\u0085"'),
    ],
)
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("\t", 'time: invalid duration "\\t"'),
        ("5", 'time: missing unit in duration "5"'),
        ("5\tmin", 'time: unknown unit "\\tmin" in duration "5\\tmin"'),
    ],
)
def test_a_bad_duration_is_quoted_as_go_does(text: str, error: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration_ns(text)
    assert str(info.value) == error


def test_a_bad_flag_value_is_quoted_as_go_does() -> None:
    with pytest.raises(ConfigError) as info:
        load_agent_config(["-http-port=é"])
    assert 'Invalid value "é" for flag -http-port' in str(info.value)


def test_log_values_with_spaces_are_quoted_as_hclog_does() -> None:
    line = render_line(None, "", {"event": "e", "reason": "a b\tc"})
    assert line.endswith('reason="a b\\tc"')


@pytest.mark.parametrize(
    ("addr", "split"),
    [("127.0.0.1:8500", ("127.0.0.1", 8500)), ("[::1]:80", ("::1", 80)), (":0", ("", 0))],
)
def test_split_host_port(addr: str, split: tuple[str, int]) -> None:
    assert split_host_port(addr) == split
    assert join_host_port(*split) == addr


@pytest.mark.parametrize(
    ("addr", "error"),
    [
        ("host", "address host: missing port in address"),
        ("::1:80", "address ::1:80: too many colons in address"),
        ("[::1", "address [::1: missing ']' in address"),
        ("h:http", "address h:http: invalid port"),
        ("h:70000", "address h:70000: invalid port"),
    ],
)
def test_split_host_port_errors_are_go_texts(addr: str, error: str) -> None:
    with pytest.raises(AddressError, match=error.replace("[", r"\[")):
        split_host_port(addr)


def test_envoy_admin_bind_uses_the_same_splitter() -> None:
    config = bootstrap_config("p", "s", admin_bind="[::1]:19000")
    address = config["admin"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("::1", 19000)
