"""PUT /v1/txn: verbs, atomicity, result and error shapes, limits."""

from __future__ import annotations

import base64
import json

from tests.conftest import HTTP


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def txn(http: HTTP, ops: list[dict], query: str = "") -> tuple[int, dict, dict]:
    status, headers, body = await http.put(f"/v1/txn{query}", json.dumps(ops))
    return status, headers, json.loads(body) if body.startswith(b"{") else body


async def test_write_txn_shares_one_index_and_returns_results(http: HTTP) -> None:
    status, headers, out = await txn(
        http,
        [
            {"KV": {"Verb": "set", "Key": "t/a", "Value": b64(b"1")}},
            {"KV": {"Verb": "set", "Key": "t/b", "Value": b64(b"2"), "Flags": 7}},
            {"KV": {"Verb": "get", "Key": "t/a"}},
            {"KV": {"Verb": "delete", "Key": "nothing"}},
        ],
    )
    assert status == 200 and out["Errors"] is None
    assert "X-Consul-Index" not in headers
    a, b, got = (r["KV"] for r in out["Results"])
    assert a["ModifyIndex"] == b["ModifyIndex"] == got["ModifyIndex"]
    assert a["Value"] is None and b["Flags"] == 7
    assert got["Value"] == b64(b"1")  # later ops see earlier writes


async def test_failed_txn_rolls_back_and_reports_every_error(http: HTTP) -> None:
    status, _, out = await txn(
        http,
        [
            {"KV": {"Verb": "set", "Key": "r/a", "Value": b64(b"1")}},
            {"KV": {"Verb": "cas", "Key": "r/b", "Index": 42, "Value": b64(b"x")}},
            {"KV": {"Verb": "get", "Key": "r/missing"}},
            {"KV": {"Verb": "bogus", "Key": "r/c"}},
            {"KV": {"Verb": "set", "Key": ""}},
        ],
    )
    assert status == 409
    assert out["Results"] is None
    assert out["Errors"] == [
        {"OpIndex": 1, "What": 'failed to set key "r/b", index is stale'},
        {"OpIndex": 2, "What": 'key "r/missing" doesn\'t exist'},
        {"OpIndex": 3, "What": 'unknown KV verb "bogus"'},
        {"OpIndex": 4, "What": "Must provide key"},
    ]
    assert (await http.get("/v1/kv/r/a"))[0] == 404


async def test_read_only_txn_fast_path(http: HTTP) -> None:
    await http.put("/v1/kv/ro/x", b"v")
    status, headers, out = await txn(
        http,
        [
            {"KV": {"Verb": "get", "Key": "ro/x"}},
            {"KV": {"Verb": "get-tree", "Key": "ro/"}},
            {"KV": {"Verb": "check-not-exists", "Key": "ro/y"}},
        ],
        "?stale",
    )
    assert status == 200
    assert "X-Consul-Index" not in headers
    assert headers["X-Consul-KnownLeader"] == "true" and headers["X-Consul-LastContact"] == "0"
    assert [r["KV"]["Key"] for r in out["Results"]] == ["ro/x", "ro/x"]
    status, _, out = await txn(http, [{"KV": {"Verb": "check-index", "Key": "ro/x", "Index": 1}}])
    assert status == 409 and "current modify index" in out["Errors"][0]["What"]


async def test_every_kv_verb(http: HTTP) -> None:
    sid = json.loads((await http.put("/v1/session/create", "{}"))[2])["ID"]
    await http.put("/v1/kv/v/a", b"a")
    [entry] = json.loads((await http.get("/v1/kv/v/a"))[2])
    idx = entry["ModifyIndex"]
    status, _, out = await txn(
        http,
        [
            {"KV": {"Verb": "cas", "Key": "v/a", "Index": idx, "Value": b64(b"a2")}},
            {"KV": {"Verb": "lock", "Key": "v/l", "Session": sid, "Value": b64(b"L")}},
            {"KV": {"Verb": "check-session", "Key": "v/l", "Session": sid}},
            {"KV": {"Verb": "unlock", "Key": "v/l", "Session": sid, "Value": b64(b"U")}},
            {"KV": {"Verb": "get-or-empty", "Key": "v/none"}},
            {"KV": {"Verb": "delete-cas", "Key": "v/a", "Index": 0}},
        ],
    )
    assert status == 409  # delete-cas with a stale index fails the whole txn
    assert out["Errors"] == [{"OpIndex": 5, "What": 'failed to delete key "v/a", index is stale'}]
    status, _, out = await txn(
        http,
        [
            {"KV": {"Verb": "lock", "Key": "v/l", "Session": sid, "Value": b64(b"L")}},
            {"KV": {"Verb": "check-session", "Key": "v/l", "Session": sid}},
            {"KV": {"Verb": "unlock", "Key": "v/l", "Session": sid, "Value": b64(b"U")}},
            {"KV": {"Verb": "check-session", "Key": "v/l", "Session": ""}},
            {"KV": {"Verb": "get-or-empty", "Key": "v/none"}},
            {"KV": {"Verb": "delete-tree", "Key": "v/"}},
            {"KV": {"Verb": "check-not-exists", "Key": "v/a"}},
        ],
    )
    assert status == 200, out
    results = [r["KV"] for r in out["Results"]]
    assert results[0]["Session"] == sid and results[0]["LockIndex"] == 1
    assert results[4] == {
        "LockIndex": 0,
        "Key": "v/none",
        "Flags": 0,
        "Value": None,
        "CreateIndex": 0,
        "ModifyIndex": 0,
    }
    assert (await http.get("/v1/kv/v/?recurse"))[0] == 404


async def test_lock_errors_in_txn(http: HTTP) -> None:
    status, _, out = await txn(
        http,
        [
            {"KV": {"Verb": "lock", "Key": "x", "Session": ""}},
            {"KV": {"Verb": "lock", "Key": "x", "Session": "11111111-2222-3333-4444-555555555555"}},
        ],
    )
    assert status == 409
    assert [e["What"] for e in out["Errors"]] == [
        "missing session",
        'invalid session "11111111-2222-3333-4444-555555555555"',
    ]


async def test_body_errors(http: HTTP) -> None:
    cases = [
        ("{", b"Failed to parse body: "),
        ('{"KV": {}}', b"Failed to parse body: json: cannot unmarshal object"),
        ('[{"Session": {}}]', b'Failed to parse body: json: unknown field "Session"'),
        (
            '[{"KV": {"Verb": "set", "Key": "k", "Value": "***"}}]',
            b"Failed to parse body: illegal base64 data at input byte 0",
        ),
        (
            '[{"KV": {"Verb": "set", "Key": "k", "Flags": "x"}}]',
            b"Failed to parse body: json: cannot unmarshal string into Go struct field "
            b"TxnOp.KV.Flags of type uint64",
        ),
        (
            '[{"KV": {"Verb": "set", "Key": "k", "Bogus": 1}}]',
            b'Failed to parse body: json: unknown field "Bogus"',
        ),
    ]
    for body, prefix in cases:
        status, _, raw = await http.put("/v1/txn", body)
        assert status == 400 and raw.startswith(prefix), (body, raw)
    assert (await http.get("/v1/kv/k"))[0] == 404


async def test_case_insensitive_keys_and_empty_elements(http: HTTP) -> None:
    status, _, out = await txn(
        http,
        [
            {},
            {"kv": {"verb": "set", "key": "ci", "value": b64(b"1")}},
            {"KV": {"VERB": "get", "KEY": "ci"}},
        ],
    )
    assert status == 200 and len(out["Results"]) == 2


async def test_limits(http: HTTP) -> None:
    ops = [{"KV": {"Verb": "set", "Key": f"k{i}"}} for i in range(129)]
    status, _, raw = await http.put("/v1/txn", json.dumps(ops))
    assert status == 413 and raw == b"Transaction contains too many operations (129 > 128)"
    assert (await http.get("/v1/kv/k0"))[0] == 404
    ok = [{"KV": {"Verb": "set", "Key": f"k{i}"}} for i in range(128)]
    assert (await http.put("/v1/txn", json.dumps(ok)))[0] == 200
    huge = [{"KV": {"Verb": "set", "Key": "h", "Value": b64(b"x" * 400_000)}}]
    status, _, raw = await http.put("/v1/txn", json.dumps(huge))
    assert status == 413 and raw.startswith(b"Request body too large, max size: 524288 bytes")
    assert (await http.request("GET", "/v1/txn"))[0] == 405


async def test_catalog_operations(http: HTTP) -> None:
    status, _, out = await txn(
        http,
        [
            {"Node": {"Verb": "set", "Node": {"Node": "tx-node", "Address": "10.9.9.9"}}},
            {
                "Service": {
                    "Verb": "set",
                    "Node": "tx-node",
                    "Service": {"Service": "tx-svc", "Port": 80},
                }
            },
            {
                "Check": {
                    "Verb": "set",
                    "Check": {
                        "Node": "tx-node",
                        "CheckID": "c1",
                        "Name": "c1",
                        "ServiceID": "tx-svc",
                        "Status": "passing",
                    },
                }
            },
        ],
    )
    assert status == 200, out
    node, svc, check = out["Results"]
    assert node["Node"]["Address"] == "10.9.9.9" and node["Node"]["Datacenter"] == "dc1"
    assert svc["Service"]["Port"] == 80 and check["Check"]["ServiceName"] == "tx-svc"
    [entry] = await http.json("GET", "/v1/health/service/tx-svc?passing")
    assert entry["Node"]["Node"] == "tx-node"
    # read-only catalog transaction
    status, headers, out = await txn(
        http,
        [
            {"Node": {"Verb": "get", "Node": {"Node": "tx-node"}}},
            {"Service": {"Verb": "get", "Node": "tx-node", "Service": {"ID": "tx-svc"}}},
            {"Check": {"Verb": "get", "Check": {"Node": "tx-node", "CheckID": "c1"}}},
        ],
    )
    assert status == 200 and "X-Consul-Index" not in headers, out
    idx = out["Results"][0]["Node"]["ModifyIndex"]
    status, _, out = await txn(
        http,
        [
            {
                "Node": {
                    "Verb": "cas",
                    "Node": {"Node": "tx-node", "Address": "1.1.1.1", "ModifyIndex": idx + 1000},
                }
            },
            {"Service": {"Verb": "get", "Node": "tx-node", "Service": {"ID": "ghost"}}},
            {"Check": {"Verb": "explode", "Check": {"Node": "tx-node", "CheckID": "c1"}}},
        ],
    )
    assert status == 409
    assert [e["What"] for e in out["Errors"]] == [
        'failed to set node "tx-node", index is stale',
        'service "ghost" on node "tx-node" doesn\'t exist',
        'unknown Check verb "explode"',
    ]
    status, _, out = await txn(
        http,
        [
            {
                "Node": {
                    "Verb": "cas",
                    "Node": {"Node": "tx-node", "Address": "1.1.1.1", "ModifyIndex": idx},
                }
            },
        ],
    )
    assert status == 200 and out["Results"][0]["Node"]["Address"] == "1.1.1.1"
    status, _, out = await txn(
        http,
        [
            {"Node": {"Verb": "delete", "Node": {"Node": "tx-node"}}},
        ],
    )
    assert status == 200 and out["Results"] == []
    assert await http.json("GET", "/v1/catalog/service/tx-svc") == []
