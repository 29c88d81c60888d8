"""GET/PUT /v1/snapshot: a consistent archive that restores state and indexes exactly."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

from consulpy.server import snapshot_archive
from tests.conftest import HTTP


async def test_save_wipe_restore_round_trip(http: HTTP, agent) -> None:
    for i in range(20):
        await http.put(f"/v1/kv/snap/{i}", str(i).encode())
    sid = json.loads((await http.put("/v1/session/create", '{"Name": "s"}'))[2])["ID"]
    await http.put(f"/v1/kv/snap/locked?acquire={sid}", b"held")
    await http.put(
        "/v1/catalog/register",
        json.dumps(
            {"Node": "ext", "Address": "10.0.0.1", "Service": {"Service": "db", "Port": 5432}}
        ),
    )
    before_kv = await http.json("GET", "/v1/kv/snap/?recurse")
    before_sessions = await http.json("GET", "/v1/session/list")
    _, kv_headers, _ = await http.get("/v1/kv/snap/?recurse")
    status, headers, archive = await http.get("/v1/snapshot")
    assert status == 200 and headers["Content-Type"] == "application/x-gzip"
    assert int(headers["X-Consul-Index"]) >= int(kv_headers["X-Consul-Index"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        assert sorted(tar.getnames()) == ["SHA256SUMS", "meta.json", "state.bin"]
    # wipe
    await http.delete("/v1/kv/?recurse")
    await http.put(f"/v1/session/destroy/{sid}")
    await http.put("/v1/catalog/deregister", json.dumps({"Node": "ext"}))
    assert (await http.get("/v1/kv/snap/?recurse"))[0] == 404
    # restore
    status, _, raw = await http.put("/v1/snapshot", archive)
    assert status == 200, raw
    assert await http.json("GET", "/v1/kv/snap/?recurse") == before_kv
    assert await http.json("GET", "/v1/session/list") == before_sessions
    _, after_headers, _ = await http.get("/v1/kv/snap/?recurse")
    assert after_headers["X-Consul-Index"] == kv_headers["X-Consul-Index"]
    [row] = await http.json("GET", "/v1/catalog/service/db")
    assert row["Node"] == "ext"


async def test_corrupt_archives_are_refused_with_400_and_change_nothing(http: HTTP) -> None:
    await http.put("/v1/kv/stay", b"1")
    _, _, archive = await http.get("/v1/snapshot")
    broken = bytearray(gzip.decompress(archive))
    broken[600] ^= 0xFF  # inside state.bin or meta.json: the checksums catch it
    not_a_store = snapshot_archive.build(b"\x93\x01\x02\x03", index=1, term=1, datacenter="dc1")
    for body, why in (
        (b"not an archive", b"failed to read snapshot archive"),
        (gzip.compress(bytes(broken)), b"checksum mismatch"),
        (archive[: len(archive) // 2], b"failed to read snapshot archive"),
        (archive[:-9], b""),  # the gzip trailer cut: truncated
        (not_a_store, b""),  # checksums right, but the state is not a store
    ):
        status, _, raw = await http.put("/v1/snapshot", body)
        assert status == 400 and raw.startswith(b"Snapshot restore failed"), raw
        assert why in raw, raw
    assert (await http.get("/v1/kv/stay?raw"))[2] == b"1"
    _, _, again = await http.get("/v1/snapshot")
    assert _state(again) == _state(archive)  # nothing changed, indexes included


def _state(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        member = tar.extractfile("state.bin")
        assert member is not None
        return member.read()
