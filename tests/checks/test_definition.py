"""Parsing and validating check definitions: Consul's rules, texts, defaults, precedence."""

from __future__ import annotations

import pytest

from consulpy.agent.checks import CheckError, CheckType, parse_check_definition

S = 1_000_000_000


def parse(body: dict, **kw) -> object:
    return parse_check_definition({"Name": "c", **body}, **kw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Interval": "10s", "TTL": "10s"}, "Interval and TTL cannot both be specified"),
        (
            {"HTTP": "http://127.0.0.1/"},
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            {"OSService": "sshd"},
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            {"TCP": "127.0.0.1:1", "AliasService": "web", "Interval": "5s"},
            "Interval cannot be set for Alias checks",
        ),
        ({"AliasService": "web", "TTL": "5s"}, "TTL must be not be set for Alias checks"),
        ({}, "TTL must be > 0 for TTL checks"),
        ({"Interval": "10s"}, "TTL must be > 0 for TTL checks"),
        ({"TTL": "5s", "OutputMaxSize": -1}, "MaxOutputMaxSize must be positive"),
        (
            {"TTL": "5s", "FailuresBeforeWarning": 3, "FailuresBeforeCritical": 2},
            "FailuresBeforeWarning can't be higher than FailuresBeforeCritical",
        ),
    ],
)
def test_validation_messages_match_consul(body: dict, message: str) -> None:
    with pytest.raises(CheckError) as info:
        parse(body)
    assert str(info.value) == message
    assert info.value.kind == "invalid"


def test_missing_name_and_bad_status_have_their_own_kinds() -> None:
    with pytest.raises(CheckError, match=r"^Missing check name$") as info:
        parse_check_definition({"TTL": "5s"})
    assert info.value.kind == "name"
    with pytest.raises(CheckError, match=r"^Bad check status$") as info:
        parse({"TTL": "5s", "Status": "ok"})
    assert info.value.kind == "status"


def test_bad_duration_and_wrong_types_are_decode_errors() -> None:
    with pytest.raises(CheckError, match='time: invalid duration "soon"') as info:
        parse({"TTL": "soon"})
    assert info.value.kind == "decode"
    with pytest.raises(CheckError, match="HTTP must be a string") as info:
        parse({"HTTP": 5, "Interval": "1s"})
    assert info.value.kind == "decode"
    with pytest.raises(CheckError, match="Header values must be lists of strings"):
        parse({"HTTP": "http://x/", "Interval": "1s", "Header": {"A": "b"}})


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"GRPC": "a:1", "HTTP": "http://a/", "TCP": "a:1", "Interval": "5s"}, CheckType.GRPC),
        ({"HTTP": "http://a/", "TCP": "a:1", "UDP": "a:1", "Interval": "5s"}, CheckType.HTTP),
        ({"TCP": "a:1", "UDP": "a:1", "Interval": "5s"}, CheckType.TCP),
        ({"UDP": "a:1", "H2PING": "a:1", "Interval": "5s"}, CheckType.UDP),
        ({"Args": ["true"], "DockerContainerID": "x", "Interval": "5s"}, CheckType.DOCKER),
        ({"Args": ["true"], "H2PING": "a:1", "Interval": "5s"}, CheckType.SCRIPT),
        ({"H2PING": "a:1", "OSService": "x", "Interval": "5s"}, CheckType.H2PING),
        ({"OSService": "x", "Interval": "5s"}, CheckType.OS_SERVICE),
        ({"TTL": "5s"}, CheckType.TTL),
        ({"AliasService": "web"}, CheckType.ALIAS),
        ({"AliasNode": "n2"}, CheckType.ALIAS),
    ],
)
def test_type_precedence(body: dict, kind: CheckType) -> None:
    defn = parse(body)
    assert defn.type == kind
    assert defn.type == kind.value  # a plain string to the agent


def test_defaults_minimum_interval_and_timeouts() -> None:
    http = parse({"HTTP": "http://a/", "Interval": "100ms"})
    assert http.interval == 1.0  # raised to Consul's 1 s floor
    assert http.interval_text == "100ms"  # but shown as registered
    assert http.timeout == 10.0 and http.timeout_text == ""
    script = parse({"Args": ["true"], "Interval": "2s"})
    assert script.timeout == 30.0
    assert parse({"TCP": "a:1", "Interval": "2s", "Timeout": "250ms"}).timeout == 0.25
    fast = parse({"HTTP": "http://a/", "Interval": "100ms"}, min_interval=0.05)
    assert fast.interval == 0.1
    ttl = parse({"TTL": "15s"})
    assert ttl.ttl == 15.0 and ttl.interval == 0.0
    assert ttl.initial_status == "critical"
    assert parse({"TTL": "15s", "Status": "passing"}).initial_status == "passing"


def test_durations_as_nanosecond_numbers() -> None:
    defn = parse({"TCP": "a:1", "Interval": 5 * S, "Timeout": 1.5e9})
    assert defn.interval == 5.0 and defn.timeout == 1.5
    assert defn.interval_text == "5s" and defn.timeout_text == "1.5s"


def test_key_spellings_from_clients_and_config_files() -> None:
    defn = parse_check_definition(
        {
            "name": "c",
            "checkid": "cid",
            "script_args": ["/bin/true"],
            "interval": "5s",
            "tls_skip_verify": True,
            "service_id": "web",
            "deregister_critical_service_after": "90s",
        }
    )
    assert defn.id == "cid" and defn.args == ("/bin/true",)
    assert defn.type == CheckType.SCRIPT and defn.tls_skip_verify
    assert defn.service_id == "web" and defn.deregister_critical_service_after == 90.0
    both = parse(
        {"ID": "primary", "CheckID": "alias", "Args": ["a"], "ScriptArgs": ["b"], "Interval": "1s"}
    )
    assert both.id == "primary" and both.args == ("a",)


def test_ids_and_names_default_like_consul() -> None:
    assert parse({"TTL": "5s"}).id == "c"
    embedded = parse_check_definition(
        {"TTL": "5s"},
        service_id="web-1",
        default_id="service:web-1",
        default_name="Service 'web' check",
    )
    assert embedded.id == "service:web-1"
    assert embedded.name == "Service 'web' check"
    assert embedded.service_id == "web-1"


def test_h2ping_uses_tls_unless_told_not_to() -> None:
    assert parse({"H2PING": "a:1", "Interval": "5s"}).h2ping_use_tls is True
    assert parse({"H2PING": "a:1", "Interval": "5s", "H2PingUseTLS": False}).h2ping_use_tls is False
    assert parse({"TTL": "5s"}).h2ping_use_tls is False


def test_definition_json_is_omitempty_with_go_durations() -> None:
    defn = parse(
        {
            "HTTP": "https://a/health",
            "Method": "POST",
            "Header": {"X-A": ["1", "2"]},
            "TLSSkipVerify": True,
            "Interval": "1m30s",
            "Timeout": 2 * S,
            "DeregisterCriticalServiceAfter": "10m",
            "OutputMaxSize": 100,
        }
    )
    assert defn.definition_json() == {
        "Interval": "1m30s",
        "OutputMaxSize": 100,
        "Timeout": "2s",
        "DeregisterCriticalServiceAfter": "10m0s",
        "HTTP": "https://a/health",
        "TLSSkipVerify": True,
        "Header": {"X-A": ["1", "2"]},
        "Method": "POST",
    }
    assert parse({"TTL": "30s"}).definition_json() == {"TTL": "30s"}


def test_negative_thresholds_are_refused() -> None:
    with pytest.raises(CheckError, match="SuccessBeforePassing must be >= 0"):
        parse({"TTL": "5s", "SuccessBeforePassing": -1})
