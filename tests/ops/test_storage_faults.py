"""Storage integrity on a real server process: kill -9 at random instants (writes, snapshots,
compaction, restore), a log cut after a clean stop, and a disk that fills up.

The kill loop runs CONSULPY_KILL_ROUNDS rounds (8 in CI; `CONSULPY_LONG=1` runs 200).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.helpers import eventually_sync
from tests.ops.procs import BASE, call

ROUNDS = int(
    os.environ.get("CONSULPY_KILL_ROUNDS", "200" if os.environ.get("CONSULPY_LONG") else "8")
)
# Frequent snapshots and compactions, and 1 MiB log segments (with 2 KB values: a rotation
# every few hundred writes, segment deletion after compaction), so kills land in them too.
CONFIG = {
    "raft_snapshot_threshold": 40,
    "raft_snapshot_interval": "1s",
    "raft_trailing_logs": 20,
    "raft_logstore": {"wal": {"segment_size_mb": 1}},
}
PAD = "x" * 2000


def _flags(data_dir: Path, config: Path) -> list[str]:
    return [
        "-server",
        "-bootstrap-expect=1",
        f"-data-dir={data_dir}",
        "-node=n1",
        f"-config-file={config}",
        *BASE,
    ]


def _start(data_dir: Path, config: Path) -> AgentProcess:
    agent = AgentProcess(*_flags(data_dir, config)).start()

    def writable() -> bool:
        status, _ = call(agent, "PUT", "/v1/kv/ready", b"1")
        return status == 200

    eventually_sync(writable, timeout=60, what="the server to accept writes")
    return agent


def _kv(agent: AgentProcess) -> dict[str, str]:
    status, body = call(agent, "GET", "/v1/kv/k/?recurse")
    if status == 404:
        return {}
    assert status == 200, body
    return {e["Key"]: base64.b64decode(e["Value"] or "").decode() for e in json.loads(body)}


def _lost(acked: dict[str, str], state: dict[str, str]) -> list[str]:
    return [k for k, v in acked.items() if state.get(k) != v]


class Writers:
    """Threads writing unique keys; a key enters `acked` only after its PUT answered true."""

    def __init__(self, agent: AgentProcess, tag: str, acked: dict[str, str], n: int = 4) -> None:
        self.agent = agent
        self.acked = acked
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(f"{tag}-{w}",), daemon=True) for w in range(n)
        ]
        for t in self.threads:
            t.start()

    def _run(self, prefix: str) -> None:
        n = 0
        while not self.stop.is_set():
            key, value = f"k/{prefix}-{n}", f"v{n}-{PAD}"
            try:
                status, body = call(self.agent, "PUT", f"/v1/kv/{key}", value.encode())
            except OSError:
                return  # the process is gone
            if status == 200 and body.strip() == b"true":
                with self.lock:
                    self.acked[key] = value
            n += 1

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _restore(agent: AgentProcess, archive: bytes, result: list[int]) -> None:
    try:
        result.append(call(agent, "PUT", "/v1/snapshot", archive)[0])
    except OSError:
        pass  # killed before it answered


def test_kill9_at_random_instants_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CONSULPY_KILL_SEED", "18")))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    data = tmp_path / "data"
    acked: dict[str, str] = {}
    kills = restores = 0
    for rnd in range(ROUNDS):
        agent = _start(data, config)
        try:
            state = _kv(agent)
            lost = _lost(acked, state)
            assert not lost, f"round {rnd}: {len(lost)} acknowledged keys lost, e.g. {lost[:5]}"
            writers = Writers(agent, f"r{rnd}", acked)
            if rnd % 3 == 2:
                # Save an archive, write more, then restore it and kill during the restore.
                time.sleep(rng.uniform(0.2, 1.0))
                writers.join()
                status, archive = call(agent, "GET", "/v1/snapshot")
                assert status == 200
                saved = _kv(agent)
                writers = Writers(agent, f"r{rnd}b", acked)
                time.sleep(rng.uniform(0.2, 1.0))
                writers.join()
                result: list[int] = []
                t = threading.Thread(target=_restore, args=(agent, archive, result), daemon=True)
                t.start()
                time.sleep(rng.uniform(0.0, 1.5))  # before, during or after it applies
                agent.kill()
                t.join(30)
                restored = bool(result) and result[0] == 200
                agent = _start(data, config)
                now = _kv(agent)
                if restored or now == saved:
                    assert now == saved, f"round {rnd}: an acknowledged restore did not stick"
                    acked.clear()
                    acked.update(saved)
                    restores += 1
                else:
                    lost = _lost(acked, now)
                    assert not lost, f"round {rnd}: {len(lost)} keys lost after a failed restore"
                writers = Writers(agent, f"r{rnd}c", acked)
            time.sleep(rng.uniform(0.1, 2.5))
            agent.kill()  # SIGKILL to the whole process group, writers mid-flight
            kills += 1
            writers.join()
        finally:
            agent.kill()
    agent = _start(data, config)
    try:
        lost = _lost(acked, _kv(agent))
    finally:
        agent.stop()
    assert not lost, f"{len(lost)} acknowledged keys lost at the end"
    assert kills == ROUNDS and len(acked) >= 20 * ROUNDS // 2
    print(f"kill -9 loop: {kills} kills, {restores} restores, {len(acked)} acknowledged keys kept")


def _agent_fails_to_start(data: Path, config: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "consulpy", "agent", *_flags(data, config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_log_cut_after_a_clean_stop_is_refused_not_silently_lost(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({}))
    data = tmp_path / "data"
    agent = _start(data, config)
    try:
        for i in range(30):
            assert call(agent, "PUT", f"/v1/kv/k/{i}", b"v")[0] == 200
    finally:
        agent.stop()  # SIGTERM: a server shuts down without leaving (exit 1, as Consul)
    assert (data / "raft" / "wal" / "meta").exists()  # the clean close recorded its mark
    seg = sorted((data / "raft" / "wal").glob("*.seg"))[-1]
    os.truncate(seg, seg.stat().st_size - 100)
    out = _agent_fails_to_start(data, config)
    assert "raft log corrupt" in out and "consulpy operator raft recover" in out, out[-3000:]
    assert "may have acknowledged them" in out

    rec = consulpy("operator", "raft", "recover", f"-data-dir={data}")
    assert rec.returncode == 0, rec.stderr
    assert "Dropped the damaged part" in rec.stdout and "are gone from this server" in rec.stdout
    agent = _start(data, config)  # now it starts, with what was readable
    try:
        assert len(_kv(agent)) >= 20
    finally:
        agent.stop()


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # down to the last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_disk_refuses_writes_acknowledges_nothing_unpersisted_and_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({}))
    data = small_disk / "data"
    agent = _start(data, config)
    acked: dict[str, str] = {}
    try:
        for i in range(20):
            assert call(agent, "PUT", f"/v1/kv/k/before-{i}", b"v")[0] == 200
            acked[f"k/before-{i}"] = "v"
        _fill(small_disk / "filler")
        errors: list[bytes] = []

        def refused() -> bool:
            status, body = call(agent, "PUT", "/v1/kv/k/probe", b"x")
            if status == 200:
                acked["k/probe"] = "x"  # it still fit: persisted, so it must survive
                return False
            errors.append(body)
            return True

        eventually_sync(refused, timeout=60, what="writes to be refused on a full disk")
        status, body = call(agent, "PUT", "/v1/kv/k/during", b"x")
        assert status != 200
        assert b"cannot be persisted" in body or b"No space left" in body, body
        assert agent.proc is not None and agent.proc.poll() is None  # still serving
        status, _ = call(agent, "GET", "/v1/kv/k/before-3")
        assert status == 200  # reads still work

        (small_disk / "filler").unlink()

        def accepted() -> bool:
            return call(agent, "PUT", "/v1/kv/k/after", b"y")[0] == 200

        eventually_sync(accepted, timeout=60, what="writes to succeed once space returns")
        acked["k/after"] = "y"
        agent.kill()
        agent = _start(data, config)
        lost = _lost(acked, _kv(agent))
        assert not lost, lost
    finally:
        agent.kill()
        shutil.rmtree(data, ignore_errors=True)
