"""Loads the Serf traffic captured in tests/gossip/data (see its README)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data"
CAPTURE_KEY = bytes(range(32))


@dataclass
class Capture:
    packets: list[tuple[str, bytes]] = field(default_factory=list)  # (to, datagram)
    streams: dict[tuple[int, str], bytes] = field(default_factory=dict)  # (conn, dir) -> bytes


def load(name: str) -> Capture:
    cap = Capture()
    for line in (DATA / name).read_text().splitlines():
        rec = json.loads(line)
        if rec.get("proto") == "udp":
            cap.packets.append((rec["to"], bytes.fromhex(rec["hex"])))
        elif rec.get("proto") == "tcp":
            key = (rec["conn"], rec["dir"])
            cap.streams[key] = cap.streams.get(key, b"") + bytes.fromhex(rec["hex"])
    return cap
