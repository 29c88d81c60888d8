"""A concurrent KV workload against a real cluster while the leader is isolated (SIGSTOP) and
resumed (SIGCONT), checked for linearizability. Stale reads are excluded from the check but must
only ever return values that some client wrote."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Node
from tests.raft.linearizability import INF, Op, check_history

pytestmark = pytest.mark.slow

KEYS = ["k0", "k1"]
REQUEST_TIMEOUT = 4.0


class History:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: list[Op] = []
        self.written: set[str] = set()
        self.stale_reads: list[str | None] = []
        self.start = time.monotonic()
        self._ids = 0

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, op: Op) -> None:
        with self.lock:
            self._ids += 1
            op.id = self._ids
            self.ops.append(op)


def http(node: Node, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes] | None:
    """(status, body), or None when the request got no answer (outcome unknown)."""
    req = urllib.request.Request(f"http://{node.http_addr}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, TimeoutError):
        return None


def read(node: Node, key: str, mode: str) -> tuple[str | None, int] | None:
    """(value, ModifyIndex) or (None, 0) when missing; None when unanswered or refused."""
    got = http(node, "GET", f"/v1/kv/{key}{mode}")
    if got is None or got[0] not in (200, 404):
        return None
    if got[0] == 404:
        return None, 0
    entry = json.loads(got[1])[0]
    value = base64.b64decode(entry["Value"]).decode() if entry["Value"] else ""
    return value, entry["ModifyIndex"]


def client(cid: int, nodes: list[Node], history: History, stop: threading.Event) -> None:
    rng = random.Random(cid)
    n = 0
    while not stop.is_set():
        node = rng.choice(nodes)
        key = rng.choice(KEYS)
        roll = rng.random()
        n += 1
        if roll < 0.35:
            value = f"c{cid}-{n}"
            history.written.add(value)
            call = history.now()
            got = http(node, "PUT", f"/v1/kv/{key}", value.encode())
            if got is not None and got[0] == 200 and got[1].strip() == b"true":
                history.add(Op(0, cid, "put", key, value, call, history.now()))
            else:
                # No answer, or an error: "leadership lost while committing log" means the
                # entry may still commit under the next leader, so the outcome is unknown.
                history.add(Op(0, cid, "put", key, value, call))
        elif roll < 0.75:
            mode = rng.choice(["", "?consistent"])
            call = history.now()
            result = read(node, key, mode)
            if result is not None:
                history.add(Op(0, cid, "get", key, result[0], call, history.now()))
        elif roll < 0.85:
            result = read(node, key, "?stale")
            if result is not None:
                history.stale_reads.append(result[0])
        else:
            before = read(node, key, "?consistent")
            if before is None:
                continue
            expected, index = before
            value = f"c{cid}-{n}"
            history.written.add(value)
            spec = f"{expected or ''}\x00{value}"
            call = history.now()
            got = http(node, "PUT", f"/v1/kv/{key}?cas={index}", value.encode())
            if got is not None and got[0] == 200:
                ok = got[1].strip() == b"true"
                history.add(
                    Op(0, cid, "cas_ok" if ok else "cas_fail", key, spec, call, history.now())
                )
            else:  # no answer or an error: it may or may not have applied
                history.add(Op(0, cid, "cas_unknown", key, spec, call))


def test_isolating_the_leader_keeps_the_history_linearizable(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, servers=3)
    history = History()
    stop = threading.Event()
    try:
        cluster.start_all()
        threads = [
            threading.Thread(target=client, args=(i, cluster.servers, history, stop), daemon=True)
            for i in range(4)
        ]
        for t in threads:
            t.start()
        # The fault schedule: the workload runs alone, then twice the leader is frozen for
        # longer than an election timeout (the others elect a new one) and thawed.
        pause = threading.Event()  # never set: its wait() is the schedule's clock
        pause.wait(3)
        for _ in range(2):
            leader = cluster.wait_leader()
            pid = leader.proc.proc.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGSTOP)
            pause.wait(4)
            os.kill(pid, signal.SIGCONT)
            pause.wait(2)
        stop.set()
        for t in threads:
            t.join(REQUEST_TIMEOUT * 3)
    finally:
        stop.set()
        cluster.stop_all()
    ops = history.ops
    completed = [op for op in ops if op.ret != INF]
    assert len(completed) > 100, f"too little work got done ({len(completed)} ops)"
    assert any(op.kind.startswith("cas") for op in ops)
    ok, bad_key = check_history(ops)
    if not ok:  # keep the evidence: the failing key's operations, in call order
        dump = tmp_path / "history.json"
        rows = [[o.client, o.kind, o.value, o.call, o.ret] for o in ops if o.key == bad_key]
        dump.write_text(json.dumps(sorted(rows, key=lambda r: r[3]), default=str, indent=0))
        pytest.fail(f"history of key {bad_key} is not linearizable; its operations: {dump}")
    never_written = [v for v in history.stale_reads if v is not None and v not in history.written]
    assert never_written == [], f"stale reads returned values nobody wrote: {never_written}"
    print(
        f"{len(ops)} ops ({len(completed)} completed), {len(history.stale_reads)} stale "
        "reads: linearizable"
    )
