"""Intentions as a view over service-intentions entries: precedence, ordering, matching, the
L4 decision, validation texts, and the write endpoints (by name and legacy by ID)."""

from __future__ import annotations

import itertools

import msgpack
import pytest

from consulpy.connect import config_entries as ce
from consulpy.connect import intentions as ix
from consulpy.filter import FilterError

UUID_A = "0b9c8b3e-1d2f-4a5b-8c6d-7e8f9a0b1c2d"
UUID_B = "5f0e1d2c-3b4a-4958-8776-65544332211f"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-02T11:30:00Z"


def entry(dest: str, *sources: dict, **extra) -> dict:
    return ce.normalize(
        {"Kind": "service-intentions", "Name": dest, "Sources": list(sources), **extra}
    )


# --------------------------------------------------------------------------------------------
# Precedence


# Each side is (namespace, name): both exact, a wildcard name, or both wildcards.
SIDES = {"exact": ("default", "svc"), "name*": ("default", "*"), "*/*": ("*", "*")}
EXPECTED_PRECEDENCE = {
    ("exact", "exact"): 9,
    ("name*", "exact"): 8,
    ("*/*", "exact"): 7,
    ("exact", "name*"): 6,
    ("name*", "name*"): 5,
    ("*/*", "name*"): 4,
    ("exact", "*/*"): 3,
    ("name*", "*/*"): 2,
    ("*/*", "*/*"): 1,
}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(SIDES, SIDES)))
def test_precedence_table(src: str, dst: str) -> None:
    src_ns, src_name = SIDES[src]
    dst_ns, dst_name = SIDES[dst]
    got = ix.precedence(src_name, dst_name, src_ns, dst_ns)
    assert got == EXPECTED_PRECEDENCE[(src, dst)]


def test_precedence_defaults_to_the_default_namespace() -> None:
    assert ix.precedence("web", "db") == 9
    assert ix.precedence("*", "db") == 8
    assert ix.precedence("web", "*") == 6
    assert ix.precedence("*", "*") == 5


def test_exact_name_cannot_follow_a_wildcard_namespace() -> None:
    assert ce.wildcard_error("web", "*") == "Name: exact value cannot follow wildcard namespace"
    assert ce.wildcard_error("*", "*") is None
    assert ce.wildcard_error("we*", "default") == (
        "Name: wildcard character '*' cannot be used with partial values"
    )
    assert ce.wildcard_error("web", "de*") == (
        "Namespace: wildcard character '*' cannot be used with partial values"
    )


def test_entry_sources_are_sorted_by_precedence_with_precedence_filled() -> None:
    e = entry(
        "db",
        {"Name": "*", "Action": "deny", "Precedence": 99},
        {"Name": "web", "Action": "allow"},
        {"Name": "api", "Action": "allow"},
    )
    assert [(s["Name"], s["Precedence"]) for s in e["Sources"]] == [
        ("web", 9),
        ("api", 9),  # stable: equal precedences keep their order
        ("*", 8),
    ]
    wild = entry("*", {"Name": "web", "Action": "allow"}, {"Name": "*", "Action": "deny"})
    assert [(s["Name"], s["Precedence"]) for s in wild["Sources"]] == [("web", 6), ("*", 5)]


# --------------------------------------------------------------------------------------------
# The view and ordering


def test_from_entries_view_and_consul_list_order() -> None:
    db = entry(
        "db",
        {"Name": "*", "Action": "deny"},
        {"Name": "web", "Action": "allow", "Description": "front end"},
        Meta={"owner": "team-a"},
    )
    wild = entry("*", {"Name": "*", "Action": "allow"}, {"Name": "ops", "Action": "allow"})
    api = entry(
        "api", {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/v1"}}]}
    )
    stored = [{**db, "CreateIndex": 10, "ModifyIndex": 12}, wild, api]
    got = ix.from_entries(stored)
    assert [(i["SourceName"], i["DestinationName"], i["Precedence"]) for i in got] == [
        ("web", "api", 9),
        ("web", "db", 9),
        ("*", "db", 8),
        ("ops", "*", 6),
        ("*", "*", 5),
    ]
    web_db = got[1]
    assert web_db == {
        "Description": "front end",
        "SourceNS": "default",
        "SourceName": "web",
        "DestinationNS": "default",
        "DestinationName": "db",
        "SourceType": "consul",
        "Action": "allow",
        "Meta": {"owner": "team-a"},
        "Precedence": 9,
        "CreateIndex": 10,
        "ModifyIndex": 12,
    }
    assert "Action" not in got[0] and got[0]["Permissions"][0]["HTTP"] == {"PathPrefix": "/v1"}
    assert "ID" not in web_db and "CreatedAt" not in web_db
    msgpack.packb(got)


def test_sort_key_breaks_ties_lexicographically() -> None:
    items = [
        {
            "Precedence": 9,
            "SourceNS": "default",
            "SourceName": "b",
            "DestinationNS": "default",
            "DestinationName": "a",
        },
        {
            "Precedence": 9,
            "SourceNS": "default",
            "SourceName": "a",
            "DestinationNS": "default",
            "DestinationName": "z",
        },
        {
            "Precedence": 9,
            "SourceNS": "default",
            "SourceName": "a",
            "DestinationNS": "default",
            "DestinationName": "b",
        },
        {
            "Precedence": 5,
            "SourceNS": "default",
            "SourceName": "*",
            "DestinationNS": "default",
            "DestinationName": "*",
        },
    ]
    ordered = sorted(items, key=ix.sort_key)
    assert [(i["SourceName"], i["DestinationName"]) for i in ordered] == [
        ("a", "b"),
        ("a", "z"),
        ("b", "a"),
        ("*", "*"),
    ]


def test_intention_string_forms() -> None:
    view = ix.from_entries([entry("db", {"Name": "web", "Action": "deny"})])[0]
    assert ix.intention_string(view) == "default/web => default/db (Precedence: 9, Action: DENY)"
    l7 = {**view, "Action": "", "Permissions": [{}, {}]}
    assert ix.intention_string(l7) == "default/web => default/db (Precedence: 9, Permissions: 2)"
    legacy = {**view, "ID": UUID_A}
    assert ix.intention_string(legacy) == (
        f"default/web => default/db (ID: {UUID_A}, Precedence: 9, Action: DENY)"
    )


# --------------------------------------------------------------------------------------------
# Matching


@pytest.fixture
def mesh() -> list[dict]:
    return ix.from_entries(
        [
            entry("db", {"Name": "web", "Action": "allow"}, {"Name": "*", "Action": "deny"}),
            entry("api", {"Name": "web", "Action": "deny"}),
            entry(
                "*",
                {"Name": "ops", "Action": "allow"},
                {"Name": "*", "Action": "deny"},
            ),
        ]
    )


def _pairs(found: list[dict]) -> list[tuple[str, str]]:
    return [(i["SourceName"], i["DestinationName"]) for i in found]


def test_match_by_destination_in_evaluation_order(mesh: list[dict]) -> None:
    got = ix.match(mesh, "destination", ["db", "default/api", "other"])
    assert list(got) == ["db", "default/api", "other"]
    assert _pairs(got["db"]) == [("web", "db"), ("*", "db"), ("ops", "*"), ("*", "*")]
    assert _pairs(got["default/api"]) == [("web", "api"), ("ops", "*"), ("*", "*")]
    assert _pairs(got["other"]) == [("ops", "*"), ("*", "*")]


def test_match_by_source_in_evaluation_order(mesh: list[dict]) -> None:
    got = ix.match(mesh, "source", ["web", "ops", "*"])
    assert _pairs(got["web"]) == [("web", "api"), ("web", "db"), ("*", "db"), ("*", "*")]
    assert _pairs(got["ops"]) == [("*", "db"), ("ops", "*"), ("*", "*")]
    assert _pairs(got["*"]) == [("*", "db"), ("*", "*")]


def test_match_refuses_a_bad_by_and_bad_names(mesh: list[dict]) -> None:
    with pytest.raises(ix.IntentionError, match="'by' parameter must be one of"):
        ix.match(mesh, "sideways", ["db"])
    with pytest.raises(ix.IntentionError, match="partial values"):
        ix.match(mesh, "source", ["we*b"])


# --------------------------------------------------------------------------------------------
# Decisions


def test_decide_exact_beats_wildcard(mesh: list[dict]) -> None:
    assert ix.decide(mesh, "web", "db", default_allow=False) == (
        True,
        "Matched L4 intention: default/web => default/db (Precedence: 9, Action: ALLOW)",
    )
    assert ix.decide(mesh, "billing", "db", default_allow=True) == (
        False,
        "Matched L4 intention: default/* => default/db (Precedence: 8, Action: DENY)",
    )
    assert ix.decide(mesh, "web", "api", default_allow=True)[0] is False
    assert ix.decide(mesh, "ops", "anything", default_allow=False) == (
        True,
        "Matched L4 intention: default/ops => default/* (Precedence: 6, Action: ALLOW)",
    )
    assert ix.decide(mesh, "x", "anything", default_allow=True)[0] is False
    # The exact destination outranks a source-only match (docs/intentions.md's example).
    assert ix.decide(mesh, "ops", "db", default_allow=True) == (
        False,
        "Matched L4 intention: default/* => default/db (Precedence: 8, Action: DENY)",
    )


@pytest.mark.parametrize("default_allow", [True, False])
def test_decide_defaults(default_allow: bool) -> None:
    only = ix.from_entries([entry("db", {"Name": "web", "Action": "allow"})])
    assert ix.decide(only, "api", "db", default_allow=default_allow) == (
        default_allow,
        "Default behavior configured by ACLs",
    )
    assert ix.decide([], "api", "db", default_allow=default_allow) == (
        default_allow,
        "Default behavior configured by ACLs",
    )
    for policy, allowed in (("allow", True), ("deny", False)):
        assert ix.decide(
            only, "api", "db", default_allow=default_allow, default_intention_policy=policy
        ) == (allowed, "Default intention policy")


@pytest.mark.parametrize("default_allow", [True, False])
def test_decide_l7_intention_is_an_l4_deny(default_allow: bool) -> None:
    intentions = ix.from_entries(
        [
            entry(
                "db",
                {
                    "Name": "web",
                    "Permissions": [
                        {"Action": "allow", "HTTP": {"PathPrefix": "/v1", "Methods": ["GET"]}},
                        {"Action": "deny", "HTTP": {"PathExact": "/admin"}},
                    ],
                },
                {"Name": "*", "Action": "allow"},
            )
        ]
    )
    assert ix.decide(intentions, "web", "db", default_allow=default_allow) == (
        False,
        "Matched L7 intention: default/web => default/db (Precedence: 9, Permissions: 2)",
    )
    assert ix.decide(intentions, "api", "db", default_allow=default_allow)[0] is True


def test_decide_accepts_namespaced_names(mesh: list[dict]) -> None:
    assert ix.decide(mesh, "default/web", "default/db", default_allow=False)[0] is True
    with pytest.raises(ix.IntentionError, match="Namespaces is a Consul Enterprise feature"):
        ix.decide(mesh, "team/web", "db", default_allow=False)


# --------------------------------------------------------------------------------------------
# Targets and the filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web", ("default", "web")),
        ("*", ("default", "*")),
        ("default/web", ("default", "web")),
        ("Default/web", ("default", "web")),
        ("default/default/web", ("default", "web")),
        ("/web", ("default", "web")),
    ],
)
def test_parse_target(text: str, expected: tuple[str, str]) -> None:
    assert ix.parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a/b/c/d", "input can contain at most two '/'"),
        ("we*b", "Name: wildcard character '*' cannot be used with partial values"),
        ("ns/web", 'Invalid namespace "ns": Namespaces is a Consul Enterprise feature'),
        ("ap/default/web", 'Invalid partition "ap": Partitions is a Consul Enterprise feature'),
        ("", 'Invalid intention target "": no service name'),
        ("default/", 'Invalid intention target "default/": no service name'),
    ],
)
def test_parse_target_errors(text: str, error: str) -> None:
    with pytest.raises(ix.IntentionError) as info:
        ix.parse_target(text)
    assert str(info.value) == error


def test_filter_intentions(mesh: list[dict]) -> None:
    got = ix.filter_intentions(mesh, 'SourceName == "web" and Action == "allow"')
    assert _pairs(got) == [("web", "db")]
    assert len(ix.filter_intentions(mesh, "Precedence == 9")) == 2
    assert len(ix.filter_intentions(mesh, 'ID == ""')) == len(mesh)  # absent ID is Go's ""
    assert ix.filter_intentions(mesh, "") == mesh
    with pytest.raises(FilterError):
        ix.filter_intentions(mesh, "Nope == 1")


# --------------------------------------------------------------------------------------------
# Validation texts


def _source_error(source: dict, destination: str = "db") -> str:
    with pytest.raises(ix.IntentionError) as info:
        ix.validate_source(source, destination)
    return str(info.value)


L7 = {"Action": "allow", "HTTP": {"PathPrefix": "/"}}


@pytest.mark.parametrize(
    ("source", "destination", "error"),
    [
        ({"Action": "allow"}, "db", "Sources[0].Name is required"),
        (
            {"Name": "we*b", "Action": "allow"},
            "db",
            "Sources[0].Name: wildcard character '*' cannot be used with partial values",
        ),
        ({"Name": "web"}, "db", "Sources[0].Action must be set to 'allow' or 'deny'"),
        (
            {"Name": "web", "Action": "permit"},
            "db",
            "Sources[0].Action must be set to 'allow' or 'deny'",
        ),
        (
            {"Name": "web", "Action": "allow", "Permissions": [L7]},
            "db",
            "Sources[0].Action must be omitted if Permissions are specified",
        ),
        (
            {"Name": "web", "Permissions": [L7]},
            "*",
            "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations",
        ),
        (
            {"Name": "web", "Action": "allow", "Type": "external"},
            "db",
            "Sources[0].Type must be set to 'consul'",
        ),
        (
            {"Name": "web", "Action": "allow", "Description": "x" * 513},
            "db",
            "Sources[0].Description exceeds maximum length 512",
        ),
        (
            {"Name": "web", "Action": "allow", "LegacyMeta": {"a": "b"}},
            "db",
            "Sources[0].LegacyMeta must be omitted",
        ),
        (
            {"Name": "web", "Action": "allow", "SamenessGroup": "g"},
            "db",
            "Sources[0].SamenessGroup: Sameness groups are a Consul Enterprise feature. ",
        ),
        (
            {"Name": "web", "Action": "allow", "Peer": "p*"},
            "db",
            "Sources[0].Peer: cannot use wildcard '*' in peer",
        ),
        (
            {"Name": "web", "Permissions": [{"HTTP": {"PathPrefix": "/"}}]},
            "db",
            "Sources[0].Permissions[0].Action must be set to 'allow' or 'deny'",
        ),
        (
            {"Name": "web", "Permissions": [{"Action": "allow"}]},
            "db",
            "Sources[0].Permissions[0].HTTP is required",
        ),
        (
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {}}]},
            "db",
            "Sources[0].Permissions[0].HTTP should not be empty",
        ),
        (
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "admin"}}]},
            "db",
            "Sources[0].Permissions[0].HTTP.PathExact doesn't start with '/': \"admin\"",
        ),
        (
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "v1"}}]},
            "db",
            "Sources[0].Permissions[0].HTTP.PathPrefix doesn't start with '/': \"v1\"",
        ),
        (
            {
                "Name": "web",
                "Permissions": [
                    {"Action": "allow", "HTTP": {"PathExact": "/a", "PathRegex": "/b"}}
                ],
            },
            "db",
            "Sources[0].Permissions[0].HTTP should only contain at most one of PathExact, "
            "PathPrefix, or PathRegex",
        ),
        (
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathRegex": "/(a"}}]},
            "db",
            "Sources[0].Permissions[0].HTTP.PathRegex is not a valid regular expression: error "
            "parsing regexp: missing closing ): `/(a`",
        ),
        (
            {
                "Name": "web",
                "Permissions": [{"Action": "allow", "HTTP": {"Header": [{"Exact": "x"}]}}],
            },
            "db",
            "Sources[0].Permissions[0].HTTP.Header[0] missing required Name field",
        ),
        (
            {
                "Name": "web",
                "Permissions": [{"Action": "allow", "HTTP": {"Header": [{"Name": "x"}]}}],
            },
            "db",
            "Sources[0].Permissions[0].HTTP.Header[0] should only contain one of Present, "
            "Exact, Prefix, Suffix, or Regex",
        ),
        (
            {
                "Name": "web",
                "Permissions": [
                    {
                        "Action": "allow",
                        "HTTP": {"Header": [{"Name": "x", "Exact": "a", "Prefix": "b"}]},
                    }
                ],
            },
            "db",
            "Sources[0].Permissions[0].HTTP.Header[0] should only contain one of Present, "
            "Exact, Prefix, Suffix, or Regex",
        ),
        (
            {
                "Name": "web",
                "Permissions": [
                    {"Action": "allow", "HTTP": {"Header": [{"Name": "x", "Regex": "(("}]}}
                ],
            },
            "db",
            "Sources[0].Permissions[0].HTTP.Header[0].Regex is not a valid regular expression: "
            "error parsing regexp: missing closing ): `((`",
        ),
        (
            {
                "Name": "web",
                "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["GET", "FETCH"]}}],
            },
            "db",
            'Sources[0].Permissions[0].HTTP.Methods contains an invalid method "FETCH"',
        ),
        (
            {
                "Name": "web",
                "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["get", "GET"]}}],
            },
            "db",
            'Sources[0].Permissions[0].HTTP.Methods contains "GET" more than once',
        ),
        (
            {
                "Name": "web",
                "Permissions": [
                    {"Action": "allow", "HTTP": {"PathPrefix": "/"}, "JWT": {"Providers": [{}]}}
                ],
            },
            "db",
            "JWT provider name is required",
        ),
    ],
)
def test_source_validation_texts(source: dict, destination: str, error: str) -> None:
    assert _source_error(source, destination) == error


def test_valid_l7_source_is_normalized() -> None:
    got = ix.validate_source(
        {
            "name": "web",
            "permissions": [
                {
                    "action": "allow",
                    "http": {
                        "path_regex": "/v[0-9]+/.*",
                        "methods": ["get", "post"],
                        "header": [{"name": "x-debug", "present": True, "invert": True}],
                    },
                }
            ],
        },
        "db",
    )
    assert got == {
        "Name": "web",
        "Permissions": [
            {
                "Action": "allow",
                "HTTP": {
                    "PathRegex": "/v[0-9]+/.*",
                    "Header": [{"Name": "x-debug", "Present": True, "Invert": True}],
                    "Methods": ["GET", "POST"],
                },
            }
        ],
        "Precedence": 9,
        "Type": "consul",
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"Kind": "service-intentions", "Sources": [{"Name": "web", "Action": "allow"}]},
            "Name is required",
        ),
        ({"Kind": "service-intentions", "Name": "db"}, "At least one source is required"),
        (
            {"Kind": "service-intentions", "Name": "db", "Sources": []},
            "At least one source is required",
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "d*",
                "Sources": [{"Name": "web", "Action": "allow"}],
            },
            "Name: wildcard character '*' cannot be used with partial values",
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "db",
                "Sources": [
                    {"Name": "web", "Action": "allow"},
                    {"Name": "api", "Action": "allow"},
                    {"Name": "web", "Action": "deny"},
                ],
            },
            'Sources[2] defines "web" more than once',
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "db",
                "Sources": [
                    {"Name": "web", "Action": "allow", "Peer": "east"},
                    {"Name": "web", "Action": "deny", "Peer": "east"},
                ],
            },
            'Sources[1] defines peer("east") "web" more than once',
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "db",
                "Meta": {f"k{i}": "v" for i in range(65)},
                "Sources": [{"Name": "web", "Action": "allow"}],
            },
            "1 error occurred:\n\t* Meta exceeds maximum element count 64\n\n",
        ),
        (
            {
                "Kind": "service-intentions",
                "Name": "db",
                "JWT": {"Providers": [{"VerifyClaims": []}]},
                "Sources": [{"Name": "web", "Action": "allow"}],
            },
            "JWT provider name is required",
        ),
    ],
)
def test_entry_validation_texts(body: dict, error: str) -> None:
    with pytest.raises(ce.EntryError) as info:
        ce.normalize(body)
    assert str(info.value) == error
    assert info.value.decoding is False


def test_legacy_fields_are_cleared_on_config_entry_writes() -> None:
    e = entry(
        "db",
        {
            "Name": "web",
            "Action": "allow",
            "LegacyID": UUID_A,
            "LegacyCreateTime": T0,
            "LegacyUpdateTime": T0,
        },
    )
    assert e["Sources"] == [{"Name": "web", "Action": "allow", "Precedence": 9, "Type": "consul"}]


# --------------------------------------------------------------------------------------------
# Writes by name: PUT/GET/DELETE /v1/connect/intentions/exact


def test_upsert_exact_round_trip() -> None:
    db = ix.upsert_exact(
        None, "web", "db", {"SourceType": "consul", "Action": "allow", "Description": "hi"}
    )
    assert db == {
        "Kind": "service-intentions",
        "Name": "db",
        "Sources": [
            {
                "Name": "web",
                "Action": "allow",
                "Precedence": 9,
                "Type": "consul",
                "Description": "hi",
            }
        ],
    }
    db = ix.upsert_exact(db, "*", "default/db", {"Action": "deny"})
    db = ix.upsert_exact(
        db, "web", "db", {"Permissions": [{"Action": "deny", "HTTP": {"PathPrefix": "/admin"}}]}
    )
    assert [s["Name"] for s in db["Sources"]] == ["web", "*"]
    assert "Action" not in db["Sources"][0] and "Description" not in db["Sources"][0]
    assert ce.normalize(db) == db  # what we store is a valid config entry as is
    msgpack.packb(db)

    view = ix.get_exact(db, "web")
    assert view is not None and view["Permissions"][0]["Action"] == "deny"
    assert ix.get_exact(db, "api") is None and ix.get_exact(None, "web") is None

    without_web = ix.delete_exact(db, "web")
    assert without_web is not None and [s["Name"] for s in without_web["Sources"]] == ["*"]
    assert ix.delete_exact(without_web, "api") is without_web  # absent source: unchanged
    assert ix.delete_exact(without_web, "*") is None  # last source: delete the entry
    assert ix.delete_exact(None, "web") is None


def test_upsert_exact_keeps_entry_meta_and_other_sources() -> None:
    db = entry("db", {"Name": "api", "Action": "allow"}, Meta={"owner": "a"})
    updated = ix.upsert_exact(
        {**db, "CreateIndex": 3, "ModifyIndex": 4}, "web", "db", {"Action": "deny"}
    )
    assert updated["Meta"] == {"owner": "a"}
    assert "CreateIndex" not in updated  # the store owns the indexes
    # Sending the enclosing entry's Meta back unchanged is tolerated and discarded.
    again = ix.upsert_exact(updated, "web", "db", {"Action": "allow", "Meta": {"owner": "a"}})
    assert again["Meta"] == {"owner": "a"}


@pytest.mark.parametrize(
    ("existing", "body", "error"),
    [
        (None, {"Action": "allow", "ID": UUID_A}, "ID must not be specified"),
        (None, {"Action": "allow", "Meta": {"a": "b"}}, "Meta must not be specified"),
        (
            "db",
            {"Action": "allow", "Meta": {"a": "c"}},
            "Meta must not be specified, or should be unchanged during an update.",
        ),
        (None, {"Action": "maybe"}, "Sources[0].Action must be set to 'allow' or 'deny'"),
        (None, {}, "Sources[0].Action must be set to 'allow' or 'deny'"),
        (
            None,
            {"Action": "allow", "SourceType": "external"},
            "Sources[0].Type must be set to 'consul'",
        ),
    ],
)
def test_upsert_exact_errors(existing: str | None, body: dict, error: str) -> None:
    current = entry("db", {"Name": "api", "Action": "allow"}, Meta={"a": "b"}) if existing else None
    with pytest.raises(ix.IntentionError) as info:
        ix.upsert_exact(current, "web", "db", body)
    assert str(info.value) == error


def test_upsert_exact_permissions_on_wildcard_destination_refused() -> None:
    with pytest.raises(ix.IntentionError) as info:
        ix.upsert_exact(None, "web", "*", {"Permissions": [L7]})
    assert str(info.value) == (
        "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations"
    )


def test_upsert_exact_body_decode_errors_are_flagged() -> None:
    with pytest.raises(ix.IntentionError) as info:
        ix.upsert_exact(None, "web", "db", {"Action": {"nested": True}})
    assert info.value.decoding is True
    # Unknown keys are ignored, as Go's JSON decoder does.
    assert (
        ix.upsert_exact(None, "web", "db", {"Action": "allow", "Bogus": 1})["Sources"][0]["Action"]
        == "allow"
    )


# --------------------------------------------------------------------------------------------
# The legacy ID-based API


def _store(*entries: dict) -> dict[str, dict]:
    return {e["Name"]: e for e in entries}


def test_legacy_lifecycle() -> None:
    body = {
        "SourceName": "web",
        "DestinationName": "db",
        "SourceType": "consul",
        "Action": "allow",
        "Description": "first",
        "Meta": {"team": "a"},
    }
    db = ix.create_legacy({}, body, new_id=UUID_A, now=T0)
    assert db["Sources"] == [
        {
            "Name": "web",
            "Action": "allow",
            "Precedence": 9,
            "LegacyID": UUID_A,
            "Type": "consul",
            "Description": "first",
            "LegacyMeta": {"team": "a"},
            "LegacyCreateTime": T0,
            "LegacyUpdateTime": T0,
        }
    ]
    msgpack.packb(db)
    db = ix.create_legacy(
        _store(db),
        {"SourceName": "*", "DestinationName": "db", "Action": "deny"},
        new_id=UUID_B,
        now=T0,
    )
    assert [s["LegacyID"] for s in db["Sources"]] == [UUID_A, UUID_B]

    found = ix.find_legacy([db], UUID_A)
    assert found is not None
    assert found["ID"] == UUID_A
    assert found["Meta"] == {"team": "a"}
    assert (found["CreatedAt"], found["UpdatedAt"]) == (T0, T0)
    assert ix.find_legacy([db], "nope") is None
    assert ix.find_legacy([db], "") is None
    assert [i.get("ID") for i in ix.from_entries([db])] == [UUID_A, UUID_B]

    db = ix.update_legacy(
        [db], UUID_A, {"SourceName": "api", "DestinationName": "db", "Action": "deny"}, now=T1
    )
    updated = ix.find_legacy([db], UUID_A)
    assert updated is not None
    assert (updated["SourceName"], updated["Action"], updated["Meta"]) == ("api", "deny", {})
    assert (updated["CreatedAt"], updated["UpdatedAt"]) == (T0, T1)

    dest, db_after = ix.delete_legacy([db], UUID_B)
    assert dest == "db" and db_after is not None
    assert [s["LegacyID"] for s in db_after["Sources"]] == [UUID_A]
    dest, gone = ix.delete_legacy([db_after], UUID_A)
    assert (dest, gone) == ("db", None)


def test_legacy_create_refuses_a_duplicate_pair() -> None:
    db = ix.create_legacy(
        {}, {"SourceName": "web", "DestinationName": "db", "Action": "allow"}, new_id=UUID_A, now=T0
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.create_legacy(
            _store(db),
            {"SourceName": "web", "DestinationName": "db", "Action": "deny"},
            new_id=UUID_B,
            now=T1,
        )
    assert str(info.value) == (
        f"duplicate intention found: default/web => default/db (ID: {UUID_A}, Precedence: 9, "
        "Action: ALLOW)"
    )


def test_legacy_update_refuses_renaming_onto_an_existing_pair() -> None:
    db = ix.create_legacy(
        {}, {"SourceName": "web", "DestinationName": "db", "Action": "allow"}, new_id=UUID_A, now=T0
    )
    db = ix.create_legacy(
        _store(db),
        {"SourceName": "api", "DestinationName": "db", "Action": "allow"},
        new_id=UUID_B,
        now=T0,
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.update_legacy(
            [db], UUID_B, {"SourceName": "web", "DestinationName": "db", "Action": "deny"}, now=T1
        )
    assert str(info.value).startswith("duplicate intention found: default/web => default/db (")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"ID": UUID_B, "SourceName": "web", "DestinationName": "db", "Action": "allow"},
            "ID must be empty when creating a new intention",
        ),
        (
            {"DestinationName": "db", "Action": "allow"},
            "1 error occurred:\n\t* SourceName must be set\n\n",
        ),
        (
            {"SourceName": "w*", "Action": "maybe", "SourceType": "aws"},
            "4 errors occurred:\n\t* SourceName: wildcard character '*' cannot be used with "
            "partial values\n\t"
            "* DestinationName must be set\n\t* Action must be set to 'allow' or 'deny'\n\t"
            "* SourceType must be set to 'consul'\n\n",
        ),
        (
            {
                "SourceName": "web",
                "DestinationName": "db",
                "Action": "allow",
                "Description": "x" * 600,
            },
            "1 error occurred:\n\t* Description exceeds maximum length 512\n\n",
        ),
        (
            {"SourceName": "web", "DestinationName": "db", "Action": "allow", "SourceNS": "team"},
            'Invalid source namespace "team": Namespaces is a Consul Enterprise feature',
        ),
        (
            {
                "SourceName": "web",
                "DestinationName": "db",
                "Action": "allow",
                "DestinationPartition": "p",
            },
            'Invalid destination partition "p": Partitions is a Consul Enterprise feature',
        ),
        (
            {"SourceName": "web", "DestinationName": "db", "Action": "allow", "Permissions": [L7]},
            "Sources[0].Action must be omitted if Permissions are specified",
        ),
        (
            {"SourceName": "web", "DestinationName": "db", "Action": "allow", "SourcePeer": "east"},
            "Sources[0].Peer cannot be set by legacy intentions",
        ),
    ],
)
def test_legacy_create_errors(body: dict, error: str) -> None:
    with pytest.raises(ix.IntentionError) as info:
        ix.create_legacy({}, body, new_id=UUID_A, now=T0)
    assert str(info.value) == error


def test_legacy_api_cannot_touch_a_config_entry_destination() -> None:
    db = entry("db", {"Name": "api", "Action": "allow"})
    message = (
        'cannot use legacy intention API to edit intentions with a destination of "db" after '
        "editing them via a service-intentions config entry"
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.create_legacy(
            _store(db),
            {"SourceName": "web", "DestinationName": "db", "Action": "allow"},
            new_id=UUID_A,
            now=T0,
        )
    assert str(info.value) == message
    # A destination mixing legacy and by-name sources is also off limits.
    legacy = ix.create_legacy(
        {}, {"SourceName": "web", "DestinationName": "db", "Action": "allow"}, new_id=UUID_A, now=T0
    )
    mixed = {
        **legacy,
        "Sources": [
            *legacy["Sources"],
            {"Name": "api", "Action": "deny", "Precedence": 9, "Type": "consul"},
        ],
    }
    with pytest.raises(ix.IntentionError) as info:
        ix.delete_legacy([mixed], UUID_A)
    assert str(info.value) == message


def test_legacy_update_and_delete_errors() -> None:
    db = ix.create_legacy(
        {}, {"SourceName": "web", "DestinationName": "db", "Action": "allow"}, new_id=UUID_A, now=T0
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.update_legacy(
            [db], UUID_B, {"SourceName": "web", "DestinationName": "db", "Action": "deny"}, now=T1
        )
    assert str(info.value) == f"Cannot modify non-existent intention: '{UUID_B}'"
    with pytest.raises(ix.IntentionError) as info:
        ix.update_legacy(
            [db], UUID_A, {"SourceName": "web", "DestinationName": "api", "Action": "deny"}, now=T1
        )
    assert str(info.value) == (
        "Cannot modify Destination partition/namespace/name for an intention once it exists."
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.delete_legacy([db], UUID_B)
    assert str(info.value) == f"Cannot delete non-existent intention: '{UUID_B}'"


def test_by_name_write_on_a_legacy_destination_drops_the_ids() -> None:
    # Consul normalizes the whole entry with the config-entry rules: legacy fields go away.
    db = ix.create_legacy(
        {}, {"SourceName": "web", "DestinationName": "db", "Action": "allow"}, new_id=UUID_A, now=T0
    )
    db = ix.upsert_exact(db, "api", "db", {"Action": "deny"})
    assert all("LegacyID" not in s for s in db["Sources"])
    assert [i.get("ID") for i in ix.from_entries([db])] == [None, None]
    # ... unless a legacy intention carries Meta, which the write would lose: refused.
    with_meta = ix.create_legacy(
        {},
        {"SourceName": "web", "DestinationName": "db", "Action": "allow", "Meta": {"k": "v"}},
        new_id=UUID_A,
        now=T0,
    )
    with pytest.raises(ix.IntentionError) as info:
        ix.upsert_exact(with_meta, "api", "db", {"Action": "deny"})
    assert str(info.value) == "Sources[0].LegacyMeta must be omitted"
