"""A linear-time matcher for RE2 patterns: a Thompson NFA, run as a DFA built lazily.

Filters arrive in HTTP query strings, so a pattern must not be able to stall the agent's event
loop the way a backtracking engine (Python's `re`) can on `(a*)*b`. RE2 promises time linear in
the text; this engine keeps that promise: each text character costs one dictionary lookup once
the (state set, character) transition has been seen, and at most one pass over the NFA before.

Only "is there a match anywhere" is computed (go-bexpr's `matches` is `regexp.Match`), which
is why captures and greediness do not exist here.
"""

from __future__ import annotations

from enum import IntEnum

from consulpy.filter.regex.charclass import CharPredicate
from consulpy.filter.regex.syntax import (
    Alternate,
    Assert,
    AssertKind,
    Char,
    Concat,
    Node,
    RegexError,
    Repeat,
)

MAX_INSTRUCTIONS = 50_000
MAX_CACHED_TRANSITIONS = 20_000

# What surrounds a position, for assertions: the start or end of the text, a newline, an
# ASCII word character, anything else.
EDGE, NEWLINE, WORD, OTHER = 0, 1, 2, 3
_WORD_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")


class _Op(IntEnum):
    CHAR = 0
    SPLIT = 1
    ASSERT = 2
    MATCH = 3


def char_context(ch: str) -> int:
    if ch == "\n":
        return NEWLINE
    return WORD if ch in _WORD_CHARS else OTHER


def _assert_holds(kind: AssertKind, before: int, after: int) -> bool:
    if kind is AssertKind.BEGIN_TEXT:
        return before == EDGE
    if kind is AssertKind.END_TEXT:
        return after == EDGE
    if kind is AssertKind.BEGIN_LINE:
        return before in (EDGE, NEWLINE)
    if kind is AssertKind.END_LINE:
        return after in (EDGE, NEWLINE)
    boundary = (before == WORD) != (after == WORD)
    return boundary if kind is AssertKind.WORD_BOUNDARY else not boundary


class _Tables:
    """The lazily built DFA: state sets, their ids, and transitions between them. Replaced
    wholesale (never mutated under a reader) when it grows too big."""

    __slots__ = ("ids", "sets", "transitions")

    def __init__(self) -> None:
        empty: frozenset[int] = frozenset()
        self.ids: dict[frozenset[int], int] = {empty: 0}
        self.sets: list[frozenset[int]] = [empty]
        # (state id, context before, char or None at the end) -> next state id, or True when
        # the pattern has matched by then
        self.transitions: dict[tuple[int, int, str | None], int | bool] = {}


class Machine:
    def __init__(self, root: Node, pattern: str) -> None:
        self.pattern = pattern
        self.ops: list[_Op] = []
        self.args: list[CharPredicate | AssertKind | None] = []
        self.out1: list[int] = []
        self.out2: list[int] = []
        match = self._emit(_Op.MATCH)
        self.start = self._build(root, match)
        self.uses_context = _Op.ASSERT in self.ops
        self._tables = _Tables()

    # -- construction ------------------------------------------------------------------------

    def _emit(
        self,
        op: _Op,
        arg: CharPredicate | AssertKind | None = None,
        out1: int = -1,
        out2: int = -1,
    ) -> int:
        if len(self.ops) >= MAX_INSTRUCTIONS:
            raise RegexError("expression too large", self.pattern)
        self.ops.append(op)
        self.args.append(arg)
        self.out1.append(out1)
        self.out2.append(out2)
        return len(self.ops) - 1

    def _build(self, node: Node, nxt: int) -> int:
        """Instructions for `node` continuing at `nxt`; returns the entry instruction."""
        if isinstance(node, Char):
            return self._emit(_Op.CHAR, node.test, nxt)
        if isinstance(node, Assert):
            return self._emit(_Op.ASSERT, node.kind, nxt)
        if isinstance(node, Concat):
            for item in reversed(node.items):
                nxt = self._build(item, nxt)
            return nxt
        if isinstance(node, Alternate):
            starts = [self._build(item, nxt) for item in node.items]
            entry = starts[-1]
            for branch in reversed(starts[:-1]):
                entry = self._emit(_Op.SPLIT, None, branch, entry)
            return entry
        assert isinstance(node, Repeat)
        if node.max is None:
            loop = self._emit(_Op.SPLIT, None, -1, nxt)
            self.out1[loop] = self._build(node.item, loop)
            entry = loop
        else:
            entry = nxt
            for _ in range(node.max - node.min):
                entry = self._emit(_Op.SPLIT, None, self._build(node.item, entry), nxt)
        for _ in range(node.min):
            entry = self._build(node.item, entry)
        return entry

    # -- matching ----------------------------------------------------------------------------

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in text (Go's regexp.MatchString)."""
        tables = self._tables
        if len(tables.transitions) > MAX_CACHED_TRANSITIONS:
            tables = self._tables = _Tables()
        transitions = tables.transitions
        state = 0
        before = EDGE
        for ch in text:
            step = transitions.get((state, before, ch))
            if step is None:
                step = self._transition(tables, state, before, ch)
            if step is True:
                return True
            state = step  # type: ignore[assignment]
            if self.uses_context:
                before = char_context(ch)
        step = transitions.get((state, before, None))
        if step is None:
            step = self._transition(tables, state, before, None)
        return step is True

    def _transition(self, tables: _Tables, state: int, before: int, ch: str | None) -> int | bool:
        after = EDGE if ch is None else char_context(ch)
        pending = tables.sets[state] | {self.start}  # a match may start at any position
        ready = self._closure(pending, before, after)
        result: int | bool
        if any(self.ops[pc] is _Op.MATCH for pc in ready):
            result = True
        elif ch is None:
            result = False
        else:
            target = frozenset(
                self.out1[pc]
                for pc in ready
                if self.ops[pc] is _Op.CHAR and self.args[pc](ch)  # type: ignore[misc]
            )
            result = tables.ids.get(target, -1)
            if result == -1:
                result = tables.ids[target] = len(tables.sets)
                tables.sets.append(target)
        tables.transitions[(state, before, ch)] = result
        return result

    def _closure(self, pcs: frozenset[int], before: int, after: int) -> list[int]:
        """The CHAR and MATCH instructions reachable from pcs without reading a character."""
        ops, args, out1, out2 = self.ops, self.args, self.out1, self.out2
        stack = list(pcs)
        seen: set[int] = set()
        ready: list[int] = []
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            op = ops[pc]
            if op is _Op.SPLIT:
                stack.append(out2[pc])
                stack.append(out1[pc])
            elif op is _Op.ASSERT:
                if _assert_holds(args[pc], before, after):  # type: ignore[arg-type]
                    stack.append(out1[pc])
            else:
                ready.append(pc)
        return ready
