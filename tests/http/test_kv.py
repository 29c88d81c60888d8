"""/v1/kv: every parameter and error path a Consul user relies on."""

from __future__ import annotations

import base64
import json

from tests.conftest import HTTP


async def put(http: HTTP, path: str, data: bytes | str = b"") -> object:
    status, _, body = await http.put(path, data)
    assert status == 200, body
    return json.loads(body)


async def test_put_get_round_trip_with_consul_fields(http: HTTP) -> None:
    assert await put(http, "/v1/kv/app/config", b"hello") is True
    status, headers, body = await http.get("/v1/kv/app/config")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    [entry] = json.loads(body)
    assert entry == {
        "LockIndex": 0,
        "Key": "app/config",
        "Flags": 0,
        "Value": base64.b64encode(b"hello").decode(),
        "CreateIndex": entry["CreateIndex"],
        "ModifyIndex": entry["CreateIndex"],
    }
    assert "Session" not in entry
    assert headers["X-Consul-Index"] == str(entry["ModifyIndex"])
    assert headers["X-Consul-KnownLeader"] == "true"
    assert headers["X-Consul-LastContact"] == "0"
    assert headers["X-Consul-Default-ACL-Policy"] == "allow"
    assert "X-Consul-Effective-Consistency" not in headers


async def test_empty_value_is_null_and_raw_is_empty(http: HTTP) -> None:
    await put(http, "/v1/kv/empty")
    [entry] = json.loads((await http.get("/v1/kv/empty"))[2])
    assert entry["Value"] is None
    status, headers, body = await http.get("/v1/kv/empty?raw")
    assert status == 200 and body == b""
    assert headers["X-Consul-Index"]


async def test_raw_returns_bytes_with_safety_headers(http: HTTP) -> None:
    payload = bytes(range(256))
    await put(http, "/v1/kv/bin", payload)
    status, headers, body = await http.get("/v1/kv/bin?raw")
    assert status == 200 and body == payload
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"


async def test_missing_key_is_404_with_index_headers(http: HTTP) -> None:
    await put(http, "/v1/kv/some", b"1")
    status, headers, body = await http.get("/v1/kv/missing")
    assert status == 404 and body == b""
    assert int(headers["X-Consul-Index"]) >= 1
    assert headers["X-Consul-KnownLeader"] == "true"
    assert headers["X-Consul-LastContact"] == "0"


async def test_flags_are_stored_and_reset_by_a_plain_put(http: HTTP) -> None:
    big = (1 << 64) - 1
    await put(http, f"/v1/kv/f?flags={big}", b"x")
    [entry] = json.loads((await http.get("/v1/kv/f"))[2])
    assert entry["Flags"] == big
    await put(http, "/v1/kv/f", b"y")
    [entry] = json.loads((await http.get("/v1/kv/f"))[2])
    assert entry["Flags"] == 0


async def test_bad_flags_and_cas_values_are_400_with_consuls_text(http: HTTP) -> None:
    # Consul answers these with 500; a malformed parameter is the client's error
    # (docs/compatibility.md).
    status, _, body = await http.put("/v1/kv/f?flags=abc", b"x")
    assert status == 400 and b'parsing "abc": invalid syntax' in body
    status, _, body = await http.put("/v1/kv/f?cas=-1", b"x")
    assert status == 400
    assert (await http.get("/v1/kv/f"))[0] == 404


async def test_recurse_and_keys_with_separator(http: HTTP) -> None:
    for key in ("web/a", "web/b/c", "web/b/d", "webx", "other"):
        await put(http, f"/v1/kv/{key}", key)
    entries = json.loads((await http.get("/v1/kv/web?recurse"))[2])
    assert [e["Key"] for e in entries] == ["web/a", "web/b/c", "web/b/d", "webx"]
    entries = json.loads((await http.get("/v1/kv/web/?recurse=false"))[2])
    assert [e["Key"] for e in entries] == ["web/a", "web/b/c", "web/b/d"]
    keys = json.loads((await http.get("/v1/kv/web/?keys&separator=/"))[2])
    assert keys == ["web/a", "web/b/"]
    keys = json.loads((await http.get("/v1/kv/web/?keys"))[2])
    assert keys == ["web/a", "web/b/c", "web/b/d"]
    keys = json.loads((await http.get("/v1/kv/?keys=True&separator=/"))[2])
    assert keys == ["other", "web/", "webx"]
    # legacy spelling
    keys = json.loads((await http.get("/v1/kv/web/?keys&seperator=/"))[2])
    assert keys == ["web/a", "web/b/"]


async def test_recurse_and_keys_404_on_empty_prefix(http: HTTP) -> None:
    assert (await http.get("/v1/kv/nothing/?recurse"))[0] == 404
    assert (await http.get("/v1/kv/nothing/?keys"))[0] == 404
    status, _, body = await http.get("/v1/kv/?keys")
    assert status == 200 and json.loads(body) == []


async def test_prefix_index_does_not_go_back_after_delete(http: HTTP) -> None:
    await put(http, "/v1/kv/p/a", b"1")
    await put(http, "/v1/kv/p/b", b"2")
    index_before = int((await http.get("/v1/kv/p/?recurse"))[1]["X-Consul-Index"])
    await http.delete("/v1/kv/p/b")
    index_after = int((await http.get("/v1/kv/p/?recurse"))[1]["X-Consul-Index"])
    assert index_after > index_before


async def test_cas_create_only_and_index_match(http: HTTP) -> None:
    assert await put(http, "/v1/kv/c?cas=0", b"first") is True
    assert await put(http, "/v1/kv/c?cas=0", b"second") is False
    [entry] = json.loads((await http.get("/v1/kv/c"))[2])
    assert await put(http, f"/v1/kv/c?cas={entry['ModifyIndex'] + 100}", b"x") is False
    assert await put(http, f"/v1/kv/c?cas={entry['ModifyIndex']}", b"third") is True
    assert (await http.get("/v1/kv/c?raw"))[2] == b"third"


async def test_delete_variants(http: HTTP) -> None:
    for key in ("d/1", "d/2", "d/3/x", "e"):
        await put(http, f"/v1/kv/{key}", b"v")
    status, _, body = await http.delete("/v1/kv/d/1")
    assert status == 200 and json.loads(body) is True
    assert (await http.get("/v1/kv/d/1"))[0] == 404
    # deleting a missing key is fine
    assert json.loads((await http.delete("/v1/kv/never"))[2]) is True
    [entry] = json.loads((await http.get("/v1/kv/d/2"))[2])
    assert json.loads((await http.delete("/v1/kv/d/2?cas=1"))[2]) is False
    assert json.loads((await http.delete(f"/v1/kv/d/2?cas={entry['ModifyIndex']}"))[2]) is True
    # Consul quirk: CAS delete of a missing key succeeds
    assert json.loads((await http.delete("/v1/kv/d/2?cas=5"))[2]) is True
    assert json.loads((await http.delete("/v1/kv/d?recurse"))[2]) is True
    assert (await http.get("/v1/kv/d?recurse"))[0] == 404
    assert (await http.get("/v1/kv/e"))[0] == 200
    assert json.loads((await http.delete("/v1/kv/?recurse"))[2]) is True
    assert (await http.get("/v1/kv/e"))[0] == 404


async def test_missing_key_name_and_conflicting_flags(http: HTTP) -> None:
    status, headers, body = await http.get("/v1/kv/")
    assert (status, body) == (400, b"Missing key name")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (await http.put("/v1/kv/", b"x"))[:3:2] == (400, b"Missing key name")
    assert (await http.delete("/v1/kv/"))[:3:2] == (400, b"Missing key name")
    status, _, body = await http.put("/v1/kv/k?cas=1&acquire=abc", b"x")
    assert status == 400 and body == b"Conflicting flags: acquire=abc&cas=1"
    status, _, body = await http.delete("/v1/kv/k?recurse&cas=1")
    assert status == 400 and body.startswith(b"Conflicting flags: ")
    assert (await http.get("/v1/kv/k"))[0] == 404


async def test_value_size_limit(http: HTTP) -> None:
    limit = 512 * 1024
    assert await put(http, "/v1/kv/big", b"x" * limit) is True
    status, _, body = await http.put("/v1/kv/big2", b"x" * (limit + 1))
    assert status == 413
    assert body.startswith(b"Request body(524289 bytes) too large, max size: 524288 bytes.")
    assert (await http.get("/v1/kv/big2"))[0] == 404


async def test_key_validation(http: HTTP) -> None:
    status, _, body = await http.put("/v1/kv/a/..%2Fetc", b"x")
    assert status == 400 and b"path traversal" in body
    status, _, body = await http.put("/v1/kv/%20padded", b"x")
    assert status == 400 and b"whitespace" in body
    # keys Patroni, Vault and Traefik use are fine
    for key in ("service/pg/leader", "vault/core:lock", "a@b.json", "ç-ünïcode", "with space"):
        assert await put(http, "/v1/kv/" + key.replace(" ", "%20"), b"v") is True
    [entry] = json.loads((await http.get("/v1/kv/with%20space"))[2])
    assert entry["Key"] == "with space"


async def test_url_encoded_slash_is_part_of_the_key(http: HTTP) -> None:
    await put(http, "/v1/kv/a%2Fb", b"1")
    [entry] = json.loads((await http.get("/v1/kv/a/b"))[2])
    assert entry["Key"] == "a/b"


async def test_acquire_release_and_lock_index(http: HTTP) -> None:
    sid = json.loads((await http.put("/v1/session/create", "{}"))[2])["ID"]
    other = json.loads((await http.put("/v1/session/create", "{}"))[2])["ID"]
    assert await put(http, f"/v1/kv/lock?acquire={sid}", b"me") is True
    [entry] = json.loads((await http.get("/v1/kv/lock"))[2])
    assert entry["Session"] == sid and entry["LockIndex"] == 1
    # re-acquire by the holder updates the value, keeps LockIndex
    assert await put(http, f"/v1/kv/lock?acquire={sid}", b"me2") is True
    [entry] = json.loads((await http.get("/v1/kv/lock"))[2])
    assert entry["LockIndex"] == 1 and base64.b64decode(entry["Value"]) == b"me2"
    assert await put(http, f"/v1/kv/lock?acquire={other}", b"them") is False
    assert await put(http, f"/v1/kv/lock?release={other}", b"") is False
    # a plain write leaves the holder in place (locks are advisory)
    assert await put(http, "/v1/kv/lock", b"plain") is True
    [entry] = json.loads((await http.get("/v1/kv/lock"))[2])
    assert entry["Session"] == sid
    assert await put(http, f"/v1/kv/lock?release={sid}", b"released") is True
    [entry] = json.loads((await http.get("/v1/kv/lock"))[2])
    assert "Session" not in entry
    assert base64.b64decode(entry["Value"]) == b"released"
    assert await put(http, f"/v1/kv/lock?acquire={other}", b"them") is True
    [entry] = json.loads((await http.get("/v1/kv/lock"))[2])
    assert entry["Session"] == other and entry["LockIndex"] == 1


async def test_acquire_with_unknown_session_is_500(http: HTTP) -> None:
    sid = "11111111-2222-3333-4444-555555555555"
    status, _, body = await http.put(f"/v1/kv/l?acquire={sid}", b"x")
    assert status == 500 and body == f'invalid session "{sid}"'.encode()
    status, _, body = await http.put("/v1/kv/l?acquire=", b"x")
    assert status == 500 and body == b"missing session"


async def test_methods_options_and_unknown_paths(http: HTTP) -> None:
    status, headers, body = await http.request("POST", "/v1/kv/x")
    assert status == 405 and body == b"method POST not allowed"
    assert headers["Allow"] == "OPTIONS,GET,PUT,DELETE"
    status, headers, body = await http.request("OPTIONS", "/v1/kv/x")
    assert status == 200 and body == b"" and headers["Allow"] == "OPTIONS,GET,PUT,DELETE"
    status, _, body = await http.get("/v1/nope")
    assert status == 404 and body == b"Invalid URL path: not a recognized HTTP API endpoint\n"


async def test_pretty_and_tenancy_and_dc(http: HTTP) -> None:
    await put(http, "/v1/kv/p", b"1")
    body = (await http.get("/v1/kv/p?pretty"))[2]
    assert body.startswith(b'[\n    {\n        "LockIndex"') and body.endswith(b"]\n")
    status, _, body = await http.get("/v1/kv/p?ns=team")
    assert status == 400 and b"Namespaces are a Consul Enterprise feature" in body
    status, _, body = await http.get("/v1/kv/p", headers={"X-Consul-Namespace": "team"})
    assert status == 400
    status, _, body = await http.get("/v1/kv/p?dc=elsewhere")
    assert (status, body) == (500, b"No path to datacenter")
    assert (await http.get("/v1/kv/p?dc=dc1"))[0] == 200


async def test_consistency_and_bad_query_params(http: HTTP) -> None:
    await put(http, "/v1/kv/q", b"1")
    for params in ("stale", "stale=", "consistent=1", "leader", "cached", "max_stale=5s"):
        assert (await http.get(f"/v1/kv/q?{params}"))[0] == 200, params
    status, _, body = await http.get("/v1/kv/q?stale&consistent")
    assert status == 400 and b"Cannot specify ?stale with ?consistent" in body
    assert (await http.get("/v1/kv/q?index=abc"))[:3:2] == (400, b"Invalid index")
    assert (await http.get("/v1/kv/q?index=1&wait=10"))[:3:2] == (400, b"Invalid wait time")
    status, _, body = await http.get("/v1/kv/q?max_stale=soon")
    assert status == 400 and body == b'Invalid max_stale value "soon"'
