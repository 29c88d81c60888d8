"""Serf-layer behaviour of the sans-I/O SerfCore: intents, events, queries, reaping."""

from __future__ import annotations

import base64
import random

import pytest

from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.events import MemberStatus, Query, UserEvent
from consulpy.gossip.keyring import Keyring
from consulpy.gossip.serf_core import SerfCore, SerfError, SerfTimings
from consulpy.gossip.serf_messages import (
    Join,
    KeyResponse,
    Leave,
    QueryMsg,
    QueryResponseMsg,
    SerfPushPull,
    UserEventMsg,
    encode_filters,
    encode_key_request,
)
from consulpy.gossip.simulation import Simulation
from consulpy.gossip.swim import SendPacket, ip_bytes


def serf(name: str = "me", **kw) -> SerfCore:
    s = SerfCore(
        name, "127.0.0.1", 7000, {"role": "web"}, MemberlistConfig.lan(), rng=random.Random(1), **kw
    )
    s.start(0.0)
    return s


def user_events(s: SerfCore) -> list[UserEvent]:
    return [e for e in s.events if isinstance(e, UserEvent)]


def test_user_event_dedup_and_age_window() -> None:
    s = serf()
    msg = UserEventMsg(5, "deploy", b"v1", False)
    s.notify_msg(msg.encode())
    s.notify_msg(msg.encode())  # duplicate: same LTime, name and payload
    s.notify_msg(UserEventMsg(5, "deploy", b"v2").encode())  # same time, other payload
    assert [(e.name, e.payload) for e in user_events(s)] == [("deploy", b"v1"), ("deploy", b"v2")]
    s.notify_msg(UserEventMsg(2000, "late", b"").encode())
    s.events.clear()
    s.notify_msg(UserEventMsg(1000, "too-old", b"").encode())  # older than clock - 512
    assert user_events(s) == []
    assert s.event_clock.time() == 2001


def test_user_event_size_limits() -> None:
    s = serf()
    with pytest.raises(SerfError, match="exceeds configured limit of 512 bytes"):
        s.user_event("x", b"y" * 600, False)
    s.user_event("ok", b"y" * 100, True)
    assert user_events(s)[0].coalesce is True


def test_intents_ordering_and_refutation() -> None:
    s = serf()
    # An intent about an unknown member is buffered and applied when it appears.
    s.notify_msg(Leave(10, "ghost").encode())
    assert s.recent_intents["ghost"].ltime == 10
    # A leave intent about ourselves while alive is refuted with a newer join intent.
    s.notify_msg(Leave(50, "me").encode())
    assert s.members["me"].member.status == MemberStatus.ALIVE
    joins = [Join.decode(b.msg[1:]) for b in s.intent_queue._items if b.msg[0] == 1]
    assert joins and joins[-1].node == "me" and joins[-1].ltime > 50


def test_push_pull_carries_left_members_and_event_ring() -> None:
    a, b = serf("a"), serf("b")
    a.user_event("e1", b"p", False)
    state = a.local_state(join=False)
    pp = SerfPushPull.decode(state[1:])
    assert len(pp.events) == 512 and pp.status_ltimes == {"a": 0}
    b.merge_remote_state(state, join=False)
    assert [(e.name, e.payload) for e in user_events(b)] == [("e1", b"p")]
    # Joining with ignore_old: events from before the join are not replayed.
    c = serf("c")
    c.join_ignore = True
    c.merge_remote_state(state, join=True)
    assert user_events(c) == []


def test_query_filters_ack_and_internal_key_queries() -> None:
    ring = Keyring([b"k" * 16])
    s = serf(keyring=ring)
    s.ml.pop_effects()
    q = QueryMsg(
        3,
        42,
        ip_bytes("127.0.0.9"),
        9,
        "asker",
        encode_filters(["me"], {"role": "w.b"}),
        1,
        0,
        10**9,
        "_serf_list-keys",
        b"",
    )
    s.notify_msg(q.encode())
    sent = [m for e in s.ml.pop_effects() if isinstance(e, SendPacket) for m in e.msgs]
    resps = [QueryResponseMsg.decode(m[2:]) for m in sent if m[:2] == b"\x08\x05"]
    assert resps[0].ack and resps[0].from_ == "me"
    kr = KeyResponse.decode(resps[1].payload or b"")
    assert (
        kr.result
        and kr.keys == [base64.b64encode(b"k" * 16).decode()]
        and kr.primary_key == kr.keys[0]
    )
    # Filters that do not match: no answer, but still rebroadcast.
    other = QueryMsg(
        4,
        43,
        ip_bytes("127.0.0.9"),
        9,
        "asker",
        encode_filters(["nope"], None),
        1,
        0,
        10**9,
        "_serf_ping",
        b"",
    )
    s.notify_msg(other.encode())
    assert not [e for e in s.ml.pop_effects() if isinstance(e, SendPacket)]
    inst = QueryMsg(
        5,
        44,
        ip_bytes("127.0.0.9"),
        9,
        "asker",
        [],
        0,
        0,
        10**9,
        "_serf_install-key",
        encode_key_request(b"n" * 32),
    )
    s.notify_msg(inst.encode())
    assert ring.keys() == [b"k" * 16, b"n" * 32]
    user = QueryMsg(6, 45, ip_bytes("127.0.0.9"), 9, "asker", [], 0, 0, 10**9, "hello", b"x")
    s.notify_msg(user.encode())
    [ev] = [e for e in s.events if isinstance(e, Query)]
    assert ev.name == "hello" and ev.source_node == "asker"


def test_failed_member_is_reaped_after_reconnect_timeout() -> None:
    timings = SerfTimings(reap_interval=5.0, reconnect_timeout=20.0, reconnect_interval=1000.0)
    sim = Simulation(5, 3, timings=timings)
    for i in range(5):
        sim.start(i)
    for i in range(1, 5):
        sim.join(i, 0)
    assert sim.run_until_true(sim.converged, 30) is not None
    sim.crash(4)
    assert (
        sim.run_until_true(lambda: sim.all_status("node-4", {MemberStatus.FAILED}), sim.now + 60)
        is not None
    )
    assert sim.run_until_true(lambda: sim.all_status("node-4", {None}), sim.now + 40)
    assert any(e[2] == "member-reap" and e[3] == "node-4" for e in sim.log)


def test_force_leave_turns_failed_into_left_everywhere() -> None:
    sim = Simulation(6, 5)
    for i in range(6):
        sim.start(i)
    for i in range(1, 6):
        sim.join(i, 0)
    assert sim.run_until_true(sim.converged, 30) is not None
    sim.crash(5)
    assert (
        sim.run_until_true(lambda: sim.all_status("node-5", {MemberStatus.FAILED}), sim.now + 60)
        is not None
    )
    sim.serfs[0].remove_failed_node("node-5", prune=False, notify=lambda: None)
    sim._after_touch(0)
    assert (
        sim.run_until_true(lambda: sim.all_status("node-5", {MemberStatus.LEFT}), sim.now + 10)
        is not None
    )


def test_tags_update_reaches_others() -> None:
    sim = Simulation(4, 9)
    for i in range(4):
        sim.start(i)
    for i in range(1, 4):
        sim.join(i, 0)
    assert sim.run_until_true(sim.converged, 30) is not None
    sim.serfs[2].set_tags({"role": "db"})
    sim._after_touch(2)
    assert (
        sim.run_until_true(
            lambda: all(s.members["node-2"].member.tags == {"role": "db"} for s in sim.serfs),
            sim.now + 5,
        )
        is not None
    )
    assert any(e[2] == "member-update" and e[3] == "node-2" for e in sim.log)


def test_name_conflict_answer() -> None:
    s = serf()
    s.ml.pop_effects()
    q = QueryMsg(3, 7, ip_bytes("127.0.0.9"), 9, "asker", [], 0, 0, 10**9, "_serf_conflict", b"me")
    s.notify_msg(q.encode())  # about ourselves: we do not answer
    assert not [e for e in s.ml.pop_effects() if isinstance(e, SendPacket)]
