"""A queue of messages to piggyback on gossip, each sent a bounded number of times.

Memberlist sends every broadcast ``retransmit_mult * ceil(log10(n + 1))`` times, the least
transmitted (then the newest) first, and a newer broadcast about the same node replaces the
older one. One instance owns each queue; the SWIM core has one, Serf has three.
"""

from __future__ import annotations

import bisect
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
    """Kept sorted by (transmits, newest first) at all times, as memberlist's btree is: a
    gossip tick walks only the front of the queue instead of sorting it (a 1,000-member pool
    queues a broadcast per member while it forms), and a named broadcast's predecessor is
    found through a dict instead of a scan."""

    def __init__(self, retransmit_mult: int, num_nodes: Callable[[], int]) -> None:
        self.retransmit_mult = retransmit_mult
        self.num_nodes = num_nodes
        self._items: list[Broadcast] = []
        self._by_name: dict[str, Broadcast] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _key(b: Broadcast) -> tuple[int, int]:
        return (b.transmits, -b.id)

    def _remove(self, b: Broadcast) -> None:
        i = bisect.bisect_left(self._items, self._key(b), key=self._key)
        del self._items[i]
        if b.name is not None and self._by_name.get(b.name) is b:
            del self._by_name[b.name]

    def queue(self, b: Broadcast) -> None:
        self._next_id += 1
        b.id = self._next_id
        b.transmits = 0
        if b.name is not None:
            old = self._by_name.get(b.name)
            if old is not None:
                self._remove(old)
                old.finished()
            self._by_name[b.name] = b
        self._items.insert(0, b)  # the newest untransmitted one sorts first

    def get(self, overhead: int, limit: int) -> list[bytes]:
        """Take the broadcasts that fit in ``limit`` bytes (each costing ``overhead`` more)."""
        if not self._items:
            return []
        tlimit = retransmit_limit(self.retransmit_mult, self.num_nodes())
        used = 0
        out: list[bytes] = []
        taken: list[Broadcast] = []
        for b in self._items:
            if limit - used <= overhead:
                break  # not even an empty message fits any more
            cost = overhead + len(b.msg)
            if used + cost > limit:
                continue
            used += cost
            out.append(b.msg)
            taken.append(b)
        done: list[Broadcast] = []
        for b in taken:
            self._remove(b)
            b.transmits += 1
            if b.transmits >= tlimit:
                done.append(b)
            else:
                bisect.insort(self._items, b, key=self._key)
                if b.name is not None:
                    self._by_name[b.name] = b
        for b in done:
            b.finished()
        return out

    def prune(self, max_retain: int) -> None:
        """Drop the most transmitted (then oldest) broadcasts beyond ``max_retain``."""
        if len(self._items) <= max_retain:
            return
        doomed = self._items[max_retain:]
        del self._items[max_retain:]
        for b in doomed:
            if b.name is not None and self._by_name.get(b.name) is b:
                del self._by_name[b.name]
            b.finished()

    def reset(self) -> None:
        items, self._items = self._items, []
        self._by_name.clear()
        for b in items:
            b.finished()
