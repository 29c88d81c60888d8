"""`consulpy snapshot save` / `restore` of a 50k-key store between two real dev agents: the
data comes back identical, and neither direction holds the whole state next to its encoded
forms (peak RSS of the agent process, from /proc/<pid>/status VmHWM)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from consulpy.bench.mem import proc_memory
from tests.cli.agentproc import AgentProcess, consulpy
from tests.ops.procs import DEV, call, get_json, reset_peak

MIB = 1 << 20
KEYS = 50_000
BATCH = 64  # operations per /v1/txn (Consul's limit)
# Buffers, worker-thread arenas and the HTTP machinery: a constant, not a share of the state.
SLACK = 16 * MIB


def _populate(agent: AgentProcess) -> None:
    for start in range(0, KEYS, BATCH):
        ops = [
            {
                "KV": {
                    "Verb": "set",
                    "Key": f"big/{i:06d}",
                    # random hex: compresses about 2:1, so the archive is several MiB
                    "Value": base64.b64encode(os.urandom(400).hex().encode()).decode(),
                }
            }
            for i in range(start, min(KEYS, start + BATCH))
        ]
        status, body = call(agent, "PUT", "/v1/txn", json.dumps(ops).encode())
        assert status == 200, body[:300]


def _kv(agent: AgentProcess) -> list[tuple[str, str | None, int, int]]:
    rows = get_json(agent, "/v1/kv/?recurse")
    return [(r["Key"], r["Value"], r["CreateIndex"], r["ModifyIndex"]) for r in rows]


def test_save_and_restore_50k_keys_in_bounded_memory(tmp_path: Path) -> None:
    source = AgentProcess(*DEV).start()
    target = AgentProcess(*DEV).start()
    try:
        assert source.proc is not None and target.proc is not None
        before_populate = proc_memory(source.proc.pid)["rss"]
        _populate(source)
        sid = json.loads(call(source, "PUT", "/v1/session/create", b'{"Name": "s"}')[1])["ID"]
        assert call(source, "PUT", f"/v1/kv/lock?acquire={sid}", b"held") == (200, b"true\n")
        # What holding this data costs an agent (its store, plus the log of the writes).
        footprint = proc_memory(source.proc.pid)["rss"] - before_populate

        # Save: the state is serialised record by record from a frozen view.
        base = reset_peak(source.proc.pid)
        path = tmp_path / "big.snap"
        out = consulpy("snapshot", "save", f"-http-addr={source.http_addr}", str(path))
        assert out.returncode == 0 and "Saved and verified snapshot" in out.stdout, out
        save_growth = proc_memory(source.proc.pid)["hwm"] - base
        archive = path.stat().st_size
        print(f"archive {archive / MIB:.1f} MiB; save peak growth {save_growth / MIB:.1f} MiB")
        assert archive >= SLACK  # so the bound below is also "less than the archive"
        assert save_growth < SLACK, f"{save_growth / MIB:.1f} MiB"

        # Restore into a fresh agent: it ends holding the new store (its latest Raft snapshot
        # is the verified state file, read on demand), less than `footprint` on the source
        # (the store and the in-memory log of the writes). On top of that: buffers. The state
        # itself is never held (measured 58 MiB against a 90 MiB footprint; holding the
        # state's bytes too, as before, cost 98 MiB).
        base = reset_peak(target.proc.pid)
        out = consulpy("snapshot", "restore", f"-http-addr={target.http_addr}", str(path))
        assert out.returncode == 0 and "Restored snapshot" in out.stdout, out
        restore_growth = proc_memory(target.proc.pid)["hwm"] - base
        bound = footprint + SLACK
        print(
            f"restore peak growth {restore_growth / MIB:.1f} MiB; bound {bound / MIB:.1f} MiB "
            f"(footprint {footprint / MIB:.1f} MiB)"
        )
        assert restore_growth < bound, f"{restore_growth / MIB:.1f} MiB"

        # Identical data: every key, value and index, and the session holding its lock.
        expected = _kv(source)
        assert len(expected) == KEYS + 1
        assert _kv(target) == expected
        [lock] = get_json(target, "/v1/kv/lock")
        assert lock["Session"] == sid and lock["LockIndex"] == 1
        assert get_json(target, f"/v1/session/info/{sid}")[0]["Name"] == "s"

        # Truncated and bit-flipped archives: 400, nothing changes.
        data = path.read_bytes()
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        for body in (data[: len(data) // 2], data[:-4], bytes(flipped)):
            status, reply = call(target, "PUT", "/v1/snapshot", body)
            assert status == 400 and reply.startswith(b"Snapshot restore failed"), reply[:300]
        assert (
            call(target, "GET", "/v1/kv/big/000000?raw")[1]
            == call(source, "GET", "/v1/kv/big/000000?raw")[1]
        )
        assert len(get_json(target, "/v1/kv/?keys")) == KEYS + 1
    finally:
        source.kill()
        target.kill()
