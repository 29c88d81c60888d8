"""Vivaldi coordinates converge on a simulated network whose latencies are known.

Nodes sit in three sites; a round trip costs 1 ms inside a site and 20-80 ms across sites.
Only the probes' acks feed the coordinates, as with real Serf. Seeded, so reproducible.
"""

from __future__ import annotations

import statistics

from consulpy.gossip.coordinate import Coordinate, CoordinateClient
from consulpy.gossip.simulation import NetworkModel, Simulation

SITES = 3
PER_SITE = 4
N = SITES * PER_SITE
# Round-trip times between sites, seconds (symmetric); inside a site 1 ms.
SITE_RTT = {(0, 1): 0.020, (0, 2): 0.080, (1, 2): 0.060}


def site(i: int) -> int:
    return i // PER_SITE


def true_rtt(a: int, b: int) -> float:
    sa, sb = sorted((site(a), site(b)))
    return 0.001 if sa == sb else SITE_RTT[(sa, sb)]


def run(seed: int, seconds: float) -> Simulation:
    net = NetworkModel(pair_latency=lambda a, b: true_rtt(a, b) / 2, jitter=0.0002)
    sim = Simulation(N, seed, net=net)
    for i in range(N):
        sim.start(i)
    for i in range(1, N):
        sim.join(i, 0)
    assert sim.run_until_true(sim.converged, 60.0) is not None
    sim.run_until(sim.now + seconds)
    return sim


def estimate(sim: Simulation, a: int, b: int) -> float:
    ca = sim.serfs[a].coordinate()
    cb = sim.serfs[a].cached_coordinate(sim.cores[b].name)
    assert ca is not None and cb is not None
    return ca.distance(cb)


def test_coordinates_converge_to_known_latencies() -> None:
    sim = run(seed=11, seconds=300.0)
    errors = []
    for a in range(N):
        for b in range(N):
            if a == b:
                continue
            est = estimate(sim, a, b)
            errors.append(abs(est - true_rtt(a, b)) / true_rtt(a, b) if site(a) != site(b) else 0)
            # Every peer's nearest neighbours by estimate are its own site.
        ranked = sorted((b for b in range(N) if b != a), key=lambda b: estimate(sim, a, b))
        assert {site(b) for b in ranked[: PER_SITE - 1]} == {site(a)}, (a, ranked)
    cross = [e for e in errors if e]
    assert statistics.median(cross) < 0.05, statistics.median(cross)
    assert max(cross) < 0.15, max(cross)
    # Own coordinates settle: the error term drops well below its start (1.5).
    assert all(s.coordinate().error < 0.5 for s in sim.serfs)  # type: ignore[union-attr]


def test_update_rejects_bad_samples_and_keeps_coordinate() -> None:
    c = CoordinateClient()
    before = c.coord
    bad = Coordinate((float("nan"),) * 8, 1.5, 0.0, 1e-5)
    for other, rtt in ((bad, 0.01), (Coordinate.new(), -1.0), (Coordinate.new(), 11.0)):
        try:
            c.update("x", other, rtt)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted a bad sample")
    short = Coordinate((0.0,) * 3, 1.5, 0.0, 1e-5)
    try:
        c.update("x", short, 0.01)
    except ValueError as exc:
        assert "dimensions" in str(exc)
    assert c.coord == before


def test_fresh_coordinate_and_wire_round_trip() -> None:
    c = Coordinate.new()
    assert c.to_api() == {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}
    moved = Coordinate((0.001,) * 8, 0.4, -0.0002, 0.0003)
    assert Coordinate.decode(moved.encode()) == moved
    # Distance: |a-b| + heights, plus adjustments when that stays positive.
    assert abs(c.distance(moved) - (0.001 * 8**0.5 + 1e-5 + 0.0003 - 0.0002)) < 1e-12


def test_disabled_coordinates_put_nothing_in_acks() -> None:
    from consulpy.gossip.config import MemberlistConfig
    from consulpy.gossip.serf_core import SerfCore

    on = SerfCore("a", "127.0.0.1", 1, {}, MemberlistConfig.lan())
    off = SerfCore("b", "127.0.0.1", 2, {}, MemberlistConfig.lan(), coordinates=False)
    assert on.ack_payload()[:1] == b"\x01"
    assert off.ack_payload() == b""
    assert off.coordinate() is None and off.cached_coordinate("b") is None
