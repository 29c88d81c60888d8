"""Progress: what a leader knows about one follower's log, and how it paces replication to it."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class ProgressState(enum.Enum):
    # One AppendEntries at a time until the follower's match point is found.
    PROBE = "probe"
    # Match known: stream entries optimistically, up to max_inflight messages ahead.
    REPLICATE = "replicate"
    # The entries the follower needs are compacted: an InstallSnapshot is under way.
    SNAPSHOT = "snapshot"


@dataclass(slots=True)
class Progress:
    match: int = 0
    next: int = 1
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False  # PROBE: an append is outstanding, wait for an answer or heartbeat
    inflight: deque[int] = field(default_factory=deque)  # last index of each unacked append
    # REPLICATE: a heartbeat answer showed the follower behind; send an append even if there is
    # nothing new, so a lost append is detected (the follower rejects the gap) and re-probed.
    needs_append: bool = False
    recent_active: bool = False  # answered since the last CheckQuorum round
    acked_seq: int = 0  # highest leader read-sequence this follower has echoed this term
    last_contact_tick: int | None = None
    pending_snapshot: int = 0  # SNAPSHOT: index of the snapshot being sent
    snap_offset: int = 0  # SNAPSHOT: next byte the follower expects
    snap_sent_tick: int = 0

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
            self.pending_snapshot = 0
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_snapshot(self, index: int, tick: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snap_offset = 0
        self.snap_sent_tick = tick
        self.probe_sent = False
        self.inflight.clear()

    def maybe_update(self, index: int) -> bool:
        """Record an acknowledgement up to `index`; True if the match point moved."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def free_to(self, index: int) -> None:
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """Back off after a rejection of the append whose previous index was `rejected`.

        Returns False for stale rejections (answers to appends sent before the match point moved).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True
