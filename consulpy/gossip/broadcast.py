"""A queue of messages to piggyback on gossip, each sent a bounded number of times.

Memberlist sends every broadcast ``retransmit_mult * ceil(log10(n + 1))`` times, the least
transmitted (then the newest) first, and a newer broadcast about the same node replaces the
older one. One instance owns each queue; the SWIM core has one, Serf has three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consulpy.gossip.config import retransmit_limit


@dataclass(slots=True)
class Broadcast:
    msg: bytes
    name: str | None = None  # broadcasts with the same name invalidate each other
    notify: Callable[[], None] | None = None  # called once: sent enough times or replaced
    transmits: int = 0
    id: int = 0

    def finished(self) -> None:
        if self.notify is not None:
            cb, self.notify = self.notify, None
            cb()


class BroadcastQueue:
    def __init__(self, retransmit_mult: int, num_nodes: Callable[[], int]) -> None:
        self.retransmit_mult = retransmit_mult
        self.num_nodes = num_nodes
        self._items: list[Broadcast] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._items)

    def queue(self, b: Broadcast) -> None:
        self._next_id += 1
        b.id = self._next_id
        b.transmits = 0
        if b.name is not None:
            keep = []
            for old in self._items:
                if old.name == b.name:
                    old.finished()
                else:
                    keep.append(old)
            self._items = keep
        self._items.append(b)

    def get(self, overhead: int, limit: int) -> list[bytes]:
        """Take the broadcasts that fit in ``limit`` bytes (each costing ``overhead`` more)."""
        if not self._items:
            return []
        tlimit = retransmit_limit(self.retransmit_mult, self.num_nodes())
        self._items.sort(key=lambda b: (b.transmits, -b.id))
        used = 0
        out: list[bytes] = []
        done: list[Broadcast] = []
        for b in self._items:
            cost = overhead + len(b.msg)
            if used + cost > limit:
                continue
            used += cost
            out.append(b.msg)
            b.transmits += 1
            if b.transmits >= tlimit:
                done.append(b)
        if done:
            gone = {id(b) for b in done}
            self._items = [b for b in self._items if id(b) not in gone]
            for b in done:
                b.finished()
        return out

    def prune(self, max_retain: int) -> None:
        """Drop the most transmitted (then oldest) broadcasts beyond ``max_retain``."""
        if len(self._items) <= max_retain:
            return
        self._items.sort(key=lambda b: (b.transmits, -b.id))
        for b in self._items[max_retain:]:
            b.finished()
        del self._items[max_retain:]

    def reset(self) -> None:
        for b in self._items:
            b.finished()
        self._items.clear()
