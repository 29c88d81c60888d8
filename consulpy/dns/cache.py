"""Encoded answers, reused until the catalog changes.

Key: the transport plus the request bytes after the 2-byte ID (question, flags and EDNS
options all included, so two requests with the same key get the same answer). A hit costs a
dict lookup and a byte splice of the client's ID into the stored wire: no parsing, no
encoding, no catalog read.

Validity: an entry remembers the `CatalogWatch.generation` seen *before* its lookup started;
it is used only while the generation is unchanged (any change to nodes, services or checks
moves it) and for at most MAX_AGE seconds (which also bounds the SOA serial's age). While the
watch is not confirmed running the generation is None and nothing is cached.

Shuffling: an entry whose answers can vary keeps up to VARIANTS independently shuffled
encodings, built one per request until the set is full and then picked at random, so clients
still see answers in varying order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consulpy.dns.answer import Plan

MAX_ENTRIES = 10_000
VARIANTS = 16
MAX_AGE = 5.0


@dataclass(slots=True)
class Entry:
    generation: int
    created: float
    plan: Plan
    encode: Callable[[Plan], bytes]
    variants: list[bytes] = field(default_factory=list)


class AnswerCache:
    def __init__(self, generation: Callable[[], int | None]) -> None:
        self._generation = generation
        self._entries: dict[bytes, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, key: bytes) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        generation = self._generation()
        if (
            generation is None
            or entry.generation != generation
            or time.monotonic() - entry.created > MAX_AGE
        ):
            del self._entries[key]
            return None
        variants = entry.variants
        if entry.plan.varies and len(variants) < VARIANTS:
            wire = entry.encode(entry.plan)
            variants.append(wire)
            return wire
        return variants[0] if len(variants) == 1 else random.choice(variants)

    def put(
        self,
        key: bytes,
        generation: int | None,
        plan: Plan,
        encode: Callable[[Plan], bytes],
        wire: bytes,
    ) -> None:
        if generation is None or not plan.cacheable or generation != self._generation():
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = Entry(generation, time.monotonic(), plan, encode, [wire])
