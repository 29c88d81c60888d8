"""PUT /v1/snapshot streams: a 250 MB upload costs a bounded amount of server memory, and the
configured size limit (limits.snapshot_max_size) refuses more with 413."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from consulpy.bench.mem import proc_memory
from tests.cli.agentproc import AgentProcess
from tests.ops.procs import DEV, call, reset_peak

MIB = 1 << 20


def _big_archive(path: Path, state_size: int) -> None:
    """A well-formed archive whose state.bin does not match its SHA256SUMS line."""
    meta = json.dumps({"Format": "consulpy-state-v1", "Index": 1}).encode()
    sums = (f"{hashlib.sha256(meta).hexdigest()}  meta.json\n{'0' * 64}  state.bin\n").encode()
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in (("meta.json", meta), ("SHA256SUMS", sums)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("state.bin")
        info.size = state_size
        tar.addfile(info, _RandomFile(state_size))


class _RandomFile(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def _put_file(addr: str, path: Path) -> tuple[int, bytes]:
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(MIB):
                yield chunk

    try:
        conn.request("PUT", "/v1/snapshot", body=body(), headers={"Content-Length": str(size)})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (BrokenPipeError, ConnectionResetError):
        return 413, b"connection closed by the server"  # it stopped reading: the limit
    finally:
        conn.close()


def test_a_250mb_upload_uses_bounded_memory_and_the_limit_holds(tmp_path: Path) -> None:
    archive = tmp_path / "big.tgz"
    _big_archive(archive, 250 * 10**6)
    assert archive.stat().st_size > 250 * 10**6
    agent = AgentProcess(*DEV, "-hcl", "limits { snapshot_max_size = 300000000 }").start()
    try:
        assert call(agent, "PUT", "/v1/kv/a", b"1")[0] == 200
        assert agent.proc is not None
        pid = agent.proc.pid
        base = reset_peak(pid)
        status, body = _put_file(agent.http_addr, archive)
        assert status == 400 and b"checksum mismatch for state.bin" in body, body[:500]
        growth = proc_memory(pid)["hwm"] - base
        print(f"RSS growth for a {archive.stat().st_size} byte upload: {growth / MIB:.1f} MiB")
        assert growth <= 64 * MIB, f"{growth / MIB:.1f} MiB"
        status, body = call(agent, "GET", "/v1/kv/a")
        assert status == 200  # nothing changed
    finally:
        agent.kill()

    agent = AgentProcess(*DEV, "-hcl", "limits { snapshot_max_size = 1000000 }").start()
    try:
        status, body = _put_file(agent.http_addr, archive)
        assert status == 413, body[:300]
    finally:
        agent.kill()
