"""Timing and protocol settings of the memberlist layer, with memberlist's profiles.

The default is memberlist's ``DefaultLANConfig`` (also Consul's ``gossip_lan`` defaults); the
local profile is ``DefaultLocalConfig``, fast enough for tests on one machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# What Serf 0.9.4 advertises in alive/push-pull Vsn: memberlist 1..5 speaking 2, Serf 2..5
# speaking 5. A real serf agent refuses a join whose current versions fall outside this.
PROTOCOL_MIN = 1
PROTOCOL_MAX = 5
PROTOCOL_CUR = 2
DELEGATE_MIN = 2
DELEGATE_MAX = 5
DELEGATE_CUR = 5


@dataclass(frozen=True, slots=True)
class MemberlistConfig:
    probe_interval: float = 1.0
    probe_timeout: float = 0.5
    indirect_checks: int = 3
    suspicion_mult: int = 4
    suspicion_max_timeout_mult: int = 6
    retransmit_mult: int = 4
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    gossip_to_the_dead_time: float = 30.0
    push_pull_interval: float = 30.0
    tcp_timeout: float = 10.0
    awareness_max_multiplier: int = 8
    udp_buffer_size: int = 1400
    enable_compression: bool = True
    disable_tcp_pings: bool = False
    # A refused TCP fallback ping (the target's host is up, nothing listens on the gossip
    # port) fails the probe at once instead of at its deadline. Not in memberlist, which
    # uses the fallback only to hear an ack; False restores its timing exactly.
    refused_fails_probe: bool = True
    dead_node_reclaim_time: float = 0.0
    protocol_version: int = PROTOCOL_CUR
    delegate_protocol_min: int = DELEGATE_MIN
    delegate_protocol_max: int = DELEGATE_MAX
    delegate_protocol_version: int = DELEGATE_CUR
    # Bounds on what we accept from peers.
    max_push_pulls: int = 128
    handoff_queue_depth: int = 1024

    @classmethod
    def lan(cls) -> MemberlistConfig:
        return cls()

    @classmethod
    def wan(cls) -> MemberlistConfig:
        return cls(
            tcp_timeout=30.0,
            suspicion_mult=6,
            push_pull_interval=60.0,
            probe_timeout=3.0,
            probe_interval=5.0,
            gossip_nodes=4,
            gossip_interval=0.5,
            gossip_to_the_dead_time=60.0,
        )

    @classmethod
    def local(cls) -> MemberlistConfig:
        return cls(
            tcp_timeout=1.0,
            indirect_checks=1,
            retransmit_mult=2,
            suspicion_mult=3,
            push_pull_interval=15.0,
            probe_timeout=0.2,
            probe_interval=1.0,
            gossip_interval=0.1,
            gossip_to_the_dead_time=15.0,
        )

    @classmethod
    def profile(cls, name: str) -> MemberlistConfig:
        try:
            return {"lan": cls.lan, "wan": cls.wan, "local": cls.local}[name]()
        except KeyError:
            raise ValueError(f"unknown gossip profile {name!r} (lan, wan or local)") from None

    def with_(self, **changes: object) -> MemberlistConfig:
        return replace(self, **changes)  # type: ignore[arg-type]

    def vsn(self) -> bytes:
        return bytes(
            [
                PROTOCOL_MIN,
                PROTOCOL_MAX,
                self.protocol_version,
                self.delegate_protocol_min,
                self.delegate_protocol_max,
                self.delegate_protocol_version,
            ]
        )


def suspicion_timeout(mult: int, n: int, interval: float) -> float:
    """Minimum suspicion time: mult * max(1, log10 n) * probe interval (ms-truncated)."""
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    return mult * math.floor(node_scale * 1000) * interval / 1000.0


def retransmit_limit(mult: int, n: int) -> int:
    """How many times each broadcast is sent: mult * ceil(log10(n + 1))."""
    return mult * math.ceil(math.log10(n + 1))


def push_pull_scale(interval: float, n: int) -> float:
    """Push-pull interval grows with log2 of the cluster size above 32 nodes."""
    if n <= 32:
        return interval
    return interval * (math.ceil(math.log2(n) - math.log2(32)) + 1)


def remaining_suspicion_time(n: int, k: int, elapsed: float, lo: float, hi: float) -> float:
    """Lifeguard's decaying suspicion timeout after n of k expected confirmations."""
    frac = math.log(n + 1.0) / math.log(k + 1.0)
    raw = hi - frac * (hi - lo)
    timeout = math.floor(raw * 1000) / 1000.0
    if timeout < lo:
        timeout = lo
    return timeout - elapsed
