"""When this server was last running, kept in `data_dir/server_metadata.json` (Consul's file and
field), for `server_rejoin_age_max`: a server offline for longer refuses to start, because its
Raft state is too old to rejoin safely (peers may have moved on and removed it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable

from consulpy.util.durations import format_duration

FILE_NAME = "server_metadata.json"
# How often a running server records that it is alive.
UPDATE_INTERVAL = 60.0


class RejoinTooOld(Exception):
    """The data dir's last-seen time is older than server_rejoin_age_max."""


def _path(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def last_seen(data_dir: str) -> float | None:
    """The recorded last-seen Unix time, None when there is no (readable) record."""
    try:
        with open(_path(data_dir), encoding="utf-8") as f:
            value = json.load(f).get("LastSeenUnix")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_age(data_dir: str, max_age: float, now: float) -> None:
    """Raise RejoinTooOld (with Consul's message) when the server has been offline too long."""
    seen = last_seen(data_dir)
    if seen is not None and now - seen > max_age:
        raise RejoinTooOld(
            "refusing to rejoin cluster because server has been offline for more than the "
            f"configured server_rejoin_age_max ({format_duration(max_age)}) - consider wiping "
            f"your data dir (or remove {_path(data_dir)} to rejoin anyway)"
        )


def record(data_dir: str, now: float) -> None:
    """Write the last-seen time (to a temporary name, then renamed: never half a file)."""
    path = _path(data_dir)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"LastSeenUnix": int(now)}, f)
    os.replace(tmp, path)


async def keep_recording(
    data_dir: str, clock: Callable[[], float] = time.time, interval: float = UPDATE_INTERVAL
) -> None:
    """Record the last-seen time every `interval` until cancelled, and once more then."""
    try:
        while True:
            with contextlib.suppress(OSError):
                record(data_dir, clock())
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(OSError):
            record(data_dir, clock())
