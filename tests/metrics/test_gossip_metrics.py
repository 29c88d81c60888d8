"""memberlist's and Serf's metrics as the gossip cores record them, on the seeded simulation:
the failure-detection counters (alive/suspect/dead, degraded probes and timeouts) need a
member cut off from the others, which only a simulated network gives deterministically."""

from __future__ import annotations

from collections import Counter

from consulpy.gossip.messages import NodeStateKind
from consulpy.gossip.simulation import NetworkModel, Simulation

LAN = (("network", "lan"),)


class Recorder:
    """Counts every record by name; keeps the labels and values seen."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.values: dict[str, list[float]] = {}
        self.labels: set[tuple[tuple[str, str], ...]] = set()

    def incr(self, name: str, value: float = 1.0, labels: tuple[tuple[str, str], ...] = ()) -> None:
        self.counts[name] += 1
        self.values.setdefault(name, []).append(value)
        self.labels.add(labels)

    def sample(self, name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None:
        self.incr(name, value, labels)


def test_cut_off_member_records_degraded_probes_and_timeouts() -> None:
    n = 6
    sim = Simulation(n, seed=3, net=NetworkModel(latency_min=0.001, latency_max=0.004))
    recs = [Recorder() for _ in range(n)]
    for i in range(n):
        sim.serfs[i].use_metrics(recs[i], LAN)
        sim.start(i)
    for i in range(1, n):
        sim.join(i, 0)
    assert sim.run_until_true(sim.converged, 60.0) is not None
    sim.run_until(sim.now + 10.0)  # a few probe rounds each
    # Everyone learnt everyone through alive messages, probes and gossip rounds ran, and the
    # join intents travelled as Serf messages.
    for rec in recs:
        assert rec.counts["memberlist.msg.alive"] >= n - 1
        assert rec.counts["memberlist.probeNode"] > 0
        assert all(v >= 0 for v in rec.values["memberlist.probeNode"])
        assert rec.counts["memberlist.gossip"] > 0
        assert rec.counts["serf.msgs.received"] > 0
        assert rec.labels == {LAN}
    assert sum(r.counts["serf.msgs.sent"] for r in recs) > 0
    assert sum(r.counts["serf.coordinate.adjustment-ms"] for r in recs) > 0
    assert not any(r.counts["memberlist.degraded.probe"] for r in recs)

    # Cut member 5 off: its probes fail with no nack (its health score rises, so its probing
    # slows: degraded.probe), and its suspicions of the others time out with none of the
    # confirmations it expected (degraded.timeout). The others suspect it, then declare it dead.
    isolated = 5
    sim.partition({isolated}, set(range(n - 1)))
    victim = sim.cores[isolated].name

    def both_sides_gave_up() -> bool:
        return sim.view(0, victim) == NodeStateKind.DEAD and any(
            sim.view(isolated, sim.cores[j].name) == NodeStateKind.DEAD for j in range(n - 1)
        )

    assert sim.run_until_true(both_sides_gave_up, sim.now + 120.0) is not None
    cut = recs[isolated]
    assert cut.counts["memberlist.degraded.probe"] > 0
    assert cut.counts["memberlist.degraded.timeout"] > 0
    assert cut.counts["memberlist.msg.suspect"] > 0
    assert cut.counts["memberlist.msg.dead"] > 0
    assert recs[0].counts["memberlist.msg.suspect"] > 0
    assert recs[0].counts["memberlist.msg.dead"] > 0


def test_no_recorder_records_nothing_and_changes_nothing() -> None:
    # Same seed, with and without recorders: the protocol runs identically.
    def run(record: bool) -> list[tuple[float, int, str, str, object]]:
        sim = Simulation(4, seed=7)
        for i in range(4):
            if record:
                sim.serfs[i].use_metrics(Recorder(), LAN)
            sim.start(i)
        for i in range(1, 4):
            sim.join(i, 0)
        sim.run_until(20.0)
        sim.crash(2)
        sim.run_until(60.0)
        return list(sim.log)

    assert run(True) == run(False)
