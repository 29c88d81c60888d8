"""A Wing-Gong / Lowe / Porcupine-style linearizability checker for a key-value register history.

The history is split per key (a KV store is linearizable iff every key's sub-history is: the
P-compositionality that Porcupine exploits). Each key's history is checked by a depth-first
search over the order of call/return events with memoisation of (set of linearized ops, state).
Operations whose outcome is unknown (a write that timed out) get a return time of +inf: the
search may linearize them anywhere after their call, including "after everything", which is
the same as never taking effect.
"""

from __future__ import annotations

from dataclasses import dataclass

INF = float("inf")
MAX_STEPS = 3_000_000


class CheckerGaveUp(Exception):
    """The search exceeded its step budget: neither proven linearizable nor refuted."""


@dataclass(slots=True)
class Op:
    id: int
    client: int
    kind: str  # "put", "get", a compare-and-set or a lock kind (see _step)
    key: str
    value: str | None  # put: the value written; get: the value read
    call: float
    ret: float = INF


class _Node:
    __slots__ = ("is_call", "match", "next", "op", "prev")

    def __init__(self, op: Op, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _step(state: str | None, op: Op) -> tuple[bool, str | None]:
    """The register's semantics. Besides put/get, compare-and-set in three flavours (value is
    "expected\x00new", expected "" meaning absent): "cas_ok" applied, "cas_fail" was refused,
    "cas_unknown" (no answer) applies iff its precondition holds wherever it is placed.

    A lock key is a register holding its holder's session ("" or absent when free); value is
    the session. "acquire_*" succeeds iff the key is free or already held by that session
    (Consul's ?acquire); "release_*" iff that session holds it, and frees it (?release).
    The _ok/_fail/_unknown suffixes mean what they mean for compare-and-set."""
    kind = op.kind
    if kind == "put":
        return True, op.value
    if kind == "get":
        return op.value == state, state
    base, _, outcome = kind.rpartition("_")
    if base in ("acquire", "release"):
        if base == "acquire":
            holds, after = state in (None, "", op.value), op.value
        else:
            holds, after = state == op.value, ""
        if outcome == "ok":
            return holds, after if holds else state
        if outcome == "fail":
            return not holds, state
        if outcome == "unknown":
            return True, after if holds else state
    expected, _, new = (op.value or "").partition("\x00")
    holds = (state or "") == expected
    if kind == "cas_ok":
        return holds, new if holds else state
    if kind == "cas_fail":
        return not holds, state
    if kind == "cas_unknown":
        return True, new if holds else state
    raise ValueError(f"unknown operation kind {kind!r}")


def check_key(ops: list[Op], max_steps: int = MAX_STEPS) -> bool:
    """True if the operations on one register admit a linearization.

    Raises CheckerGaveUp after max_steps search steps (correct histories of the simulation
    need a tiny fraction of that; a broken one can make the search explode).
    """
    if not ops:
        return True
    events: list[tuple[float, int, _Node]] = []
    for op in ops:
        call, ret = _Node(op, True), _Node(op, False)
        call.match = ret
        # At equal times a return sorts before a call: the stricter (real-time) reading.
        events.append((op.call, 1, call))
        events.append((op.ret, 0, ret))
    events.sort(key=lambda t: (t[0], t[1]))
    head = _Node(ops[0], False)
    prev = head
    for _, _, node in events:
        prev.next = node
        node.prev = prev
        prev = node

    index = {id(op): n for n, op in enumerate(ops)}
    cache: set[tuple[int, str | None]] = set()
    stack: list[tuple[_Node, str | None]] = []
    state: str | None = None
    linearized = 0
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise CheckerGaveUp(f"gave up after {max_steps} steps on {len(ops)} operations")
        assert entry is not None
        if entry.is_call:
            ok, new_state = _step(state, entry.op)
            bit = 1 << index[id(entry.op)]
            key = (linearized | bit, new_state)
            if ok and key not in cache:
                cache.add(key)
                stack.append((entry, state))
                state = new_state
                linearized |= bit
                _lift(entry)
                entry = head.next
            else:
                entry = entry.next
        else:
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << index[id(entry.op)])
            _unlift(entry)
            entry = entry.next
    return True


def _lift(call: _Node) -> None:
    assert call.prev is not None and call.match is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Node) -> None:
    ret = call.match
    assert ret is not None and ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    assert call.prev is not None
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check_history(ops: list[Op]) -> tuple[bool, str | None]:
    """(True, None) if linearizable, else (False, the first key whose history is not)."""
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key, key_ops in sorted(by_key.items()):
        if not check_key(key_ops):
            return False, key
    return True, None
