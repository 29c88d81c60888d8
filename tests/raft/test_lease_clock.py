"""The leader lease is timed by the clock from when a read sequence left, not by the ticker.

A busy leader's ticker runs late; the lease used to lapse then, and every read paid a
ReadIndex round. Now it holds while a quorum echoes sequences that left less than the lease
ago, and lapses by the clock when none did, whatever the tick count says.
"""

from __future__ import annotations

from tests.raft.helpers import leader_of, shutdown_all, start_nodes, wait_until


async def test_lease_follows_quorum_contact_not_the_ticker() -> None:
    nodes, _ = await start_nodes(3)
    try:
        leader = await leader_of(nodes)
        await wait_until(leader.has_lease, what="leader lease")
        lease = leader.config.lease_ticks * leader.config.tick_interval
        leader._tasks[0].cancel()  # the ticker: from now on it is as late as can be
        now = [leader._clock()]
        leader._clock = lambda: now[0]

        await leader.read_index()  # a quorum echoes a sequence that left at now[0]
        assert leader.has_lease()
        now[0] += 3 * lease  # 15 ticks' time without a tick: no heartbeats went out
        assert leader.core.has_lease()  # the tick count alone would still grant it
        assert not leader.has_lease()  # the clock does not: nothing left within the lease
        await leader.read_index()  # one round with the quorum renews it, ticker or not
        assert leader.has_lease()
        now[0] += lease * 0.5
        assert leader.has_lease()
        # just past the lease (exactly at it, float rounding of the clock's sum decides)
        now[0] += lease * 0.51
        assert not leader.has_lease()
    finally:
        await shutdown_all(nodes)


async def test_a_new_leader_times_its_own_terms_sequences() -> None:
    nodes, _ = await start_nodes(3)
    try:
        old = await leader_of(nodes)
        await wait_until(old.has_lease, what="leader lease")
        await old.shutdown()
        rest = [nd for nd in nodes if nd is not old]
        new = await leader_of(rest)
        await wait_until(new.has_lease, what="the new leader's lease")
        assert new._seq_term == new.core.term > old.core.term
        assert new._seq_marks[0][0] >= 1
        follower = next(nd for nd in rest if nd is not new)
        assert not follower.has_lease()
    finally:
        await shutdown_all(nodes)
