"""A concurrent KV / CAS / lock workload over HTTP that records a history for the
linearizability checker (tests/raft/linearizability.py).

Each worker lives in one agent's namespace (its thread joins it once) and talks to that agent's
127.0.0.1:8500. Keys rotate every EPOCH seconds so each key's history stays small enough to
check however long the run. Outcomes:
- a write answered 200 `true`/`false` happened/was refused at some instant between call and
  return; any other answer or none at all is unknown (ret = +inf: it may take effect later or
  never), since a 5xx after forwarding can still have been committed;
- reads in the default mode and `?consistent` are checked; `?stale` reads promise nothing
  but must return values some client wrote, and are kept apart.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from tests.raft.linearizability import Op

EPOCH = 10.0  # seconds a key set is in use
KEYS_PER_EPOCH = 3


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    stale_reads: list[str | None] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    start: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, op: Op) -> None:
        with self.lock:
            op.id = len(self.ops) + 1
            self.ops.append(op)

    def kinds(self) -> Counter[str]:
        return Counter(op.kind for op in self.ops)


class Worker:
    """One client of one agent; run() until `stop` is set."""

    def __init__(
        self, cid: int, history: History, stop: threading.Event, timeout: float = 3.0
    ) -> None:
        self.cid = cid
        self.history = history
        self.stop = stop
        self.timeout = timeout
        self.rng = random.Random(cid)
        self.session = ""
        self.n = 0

    # ------------------------------------------------------------------ HTTP
    def http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes] | None:
        """(status, body), or None when no answer came (outcome unknown)."""
        req = urllib.request.Request(f"http://127.0.0.1:8500{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            self.history.errors[f"{method} {exc.code}"] += 1
            return exc.code, exc.read()
        except (OSError, TimeoutError) as exc:
            self.history.errors[f"{method} {type(exc).__name__}"] += 1
            return None

    def read(self, key: str, mode: str, field_name: str = "Value") -> tuple[str | None, int] | None:
        """(value or lock holder, ModifyIndex); (None, 0) when the key is absent; None when
        unanswered or refused."""
        got = self.http("GET", f"/v1/kv/{key}{mode}")
        if got is None or got[0] not in (200, 404):
            return None
        if got[0] == 404:
            return None, 0
        entry = json.loads(got[1])[0]
        if field_name == "Session":
            return entry.get("Session") or "", entry["ModifyIndex"]
        value = base64.b64decode(entry["Value"]).decode() if entry["Value"] else ""
        return value, entry["ModifyIndex"]

    def create_session(self) -> bool:
        """A session with no health checks and no lock-delay: nothing but our own release can
        free what it holds, which is what the lock model assumes."""
        body = json.dumps({"Name": f"w{self.cid}", "Checks": [], "LockDelay": "0s"}).encode()
        got = self.http("PUT", "/v1/session/create", body)
        if got is None or got[0] != 200:
            return False
        self.session = json.loads(got[1])["ID"]
        return True

    # ------------------------------------------------------------------ operations
    def run(self) -> None:
        while not self.stop.is_set():
            self.n += 1
            epoch = int(self.history.now() // EPOCH)
            roll = self.rng.random()
            if roll < 0.30:
                self.put(f"e{epoch}/k{self.rng.randrange(KEYS_PER_EPOCH)}")
            elif roll < 0.65:
                self.get(f"e{epoch}/k{self.rng.randrange(KEYS_PER_EPOCH)}")
            elif roll < 0.72:
                self.stale(f"e{epoch}/k{self.rng.randrange(KEYS_PER_EPOCH)}")
            elif roll < 0.87:
                self.cas(f"e{epoch}/k{self.rng.randrange(KEYS_PER_EPOCH)}")
            else:
                self.lock_cycle(f"e{epoch}/lock")

    def _value(self) -> str:
        value = f"w{self.cid}-{self.n}"
        self.history.written.add(value)
        return value

    def put(self, key: str) -> None:
        value = self._value()
        h = self.history
        call = h.now()
        got = self.http("PUT", f"/v1/kv/{key}", value.encode())
        if got is not None and got[0] == 200 and got[1].strip() == b"true":
            h.add(Op(0, self.cid, "put", key, value, call, h.now()))
        else:
            h.add(Op(0, self.cid, "put", key, value, call))  # may or may not have applied

    def get(self, key: str, field_name: str = "Value") -> tuple[str | None, int] | None:
        h = self.history
        mode = self.rng.choice(("", "?consistent"))
        call = h.now()
        result = self.read(key, mode, field_name)
        if result is not None:
            h.add(Op(0, self.cid, "get", key, result[0], call, h.now()))
        return result

    def stale(self, key: str) -> None:
        result = self.read(key, "?stale")
        if result is not None:
            with self.history.lock:
                self.history.stale_reads.append(result[0])

    def cas(self, key: str) -> None:
        before = self.get(key)
        if before is None:
            return
        expected, index = before
        value = self._value()
        self._conditional("cas", key, f"{expected or ''}\x00{value}", f"?cas={index}", value)

    def lock_cycle(self, key: str) -> None:
        """Acquire; if that may have worked, look at the holder and release."""
        if not self.session:
            return
        got = self._conditional("acquire", key, self.session, f"?acquire={self.session}", "")
        if got is False:
            self.get(key, "Session")
            return
        self.get(key, "Session")
        self._conditional("release", key, self.session, f"?release={self.session}", "")

    def _conditional(self, kind: str, key: str, spec: str, query: str, body: str) -> bool | None:
        h = self.history
        call = h.now()
        got = self.http("PUT", f"/v1/kv/{key}{query}", body.encode())
        if got is not None and got[0] == 200 and got[1].strip() in (b"true", b"false"):
            ok = got[1].strip() == b"true"
            h.add(Op(0, self.cid, f"{kind}_{'ok' if ok else 'fail'}", key, spec, call, h.now()))
            return ok
        h.add(Op(0, self.cid, f"{kind}_unknown", key, spec, call))
        return None
