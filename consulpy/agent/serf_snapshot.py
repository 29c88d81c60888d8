"""The gossip members this agent last knew, kept in `data_dir/serf/local.snapshot.json`, so an
agent that restarts finds its cluster again without a join address (as Serf's snapshot does).

A graceful leave is recorded too: an agent that left does not rejoin those members at its next
start unless `rejoin_after_leave` (`-rejoin`) is set. Writes are coalesced (membership changes
come in bursts) and go to a temporary name first, so the file is never half written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import structlog

from consulpy.gossip.events import MemberEvent, MemberEventType

log = structlog.get_logger("consulpy.agent.gossip")

FILE_NAME = os.path.join("serf", "local.snapshot.json")
# How long a membership change may wait before it is written out.
FLUSH_DELAY = 1.0


@dataclass
class Snapshot:
    alive: dict[str, str] = field(default_factory=dict)  # node name -> gossip host:port
    left: bool = False


def read(path: str) -> Snapshot | None:
    """The snapshot at `path`, or None when there is none (or it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            data: Any = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable gossip snapshot", path=path, error=str(exc))
        return None
    alive = data.get("alive") if isinstance(data, dict) else None
    if not isinstance(alive, dict):
        return None
    members = {str(k): str(v) for k, v in alive.items() if isinstance(v, str)}
    return Snapshot(alive=members, left=bool(data.get("left")))


class Snapshotter:
    """Keeps the snapshot file in step with membership events and the agent's own leave."""

    def __init__(self, data_dir: str, own_name: str) -> None:
        self.path = os.path.join(data_dir, FILE_NAME)
        self.own_name = own_name
        self.state = Snapshot()
        self._flush: asyncio.TimerHandle | None = None

    def load(self) -> Snapshot | None:
        return read(self.path)

    def on_event(self, event: MemberEvent) -> None:
        for member in event.members:
            if member.name == self.own_name:
                continue
            if event.type in (MemberEventType.JOIN, MemberEventType.UPDATE):
                self.state.alive[member.name] = f"{member.addr}:{member.port}"
            else:  # left, failed or reaped: not a member to rejoin through
                self.state.alive.pop(member.name, None)
        self._schedule()

    def record_leave(self) -> None:
        self.state.left = True
        self.flush()

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        tmp = self.path + ".tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"alive": self.state.alive, "left": self.state.left}, f)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write the gossip snapshot", path=self.path, error=str(exc))

    def close(self) -> None:
        if self._flush is not None:
            with contextlib.suppress(Exception):
                self.flush()
