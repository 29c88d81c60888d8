"""Unit behaviour of the sans-I/O SWIM core, driven by hand."""

from __future__ import annotations

import random

import pytest

from consulpy.gossip.broadcast import Broadcast, BroadcastQueue
from consulpy.gossip.config import (
    MemberlistConfig,
    push_pull_scale,
    remaining_suspicion_time,
    retransmit_limit,
    suspicion_timeout,
)
from consulpy.gossip.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MsgType,
    Nack,
    NodeStateKind,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    decode_message,
)
from consulpy.gossip.swim import (
    SendPacket,
    StartTcpPing,
    SwimCore,
    VersionMismatch,
    ip_bytes,
)

VSN = bytes([1, 5, 2, 2, 5, 5])
CFG = MemberlistConfig.lan()


def core(name: str = "me", n_peers: int = 0) -> SwimCore:
    c = SwimCore(name, "127.0.0.1", 7000, CFG, rng=random.Random(1), now=0.0)
    c.start(0.0)
    for i in range(n_peers):
        c.alive_node(
            Alive(1, f"p{i}", ip_bytes(f"127.0.0.{i + 2}"), 7000, b"", VSN), None, bootstrap=False
        )
    c.pop_effects()
    return c


def sent(c: SwimCore, piggybacked: bool = False) -> list[tuple[tuple[str, int], object]]:
    """Messages sent, by address: the first of each packet (or all, with piggybacked)."""
    out = []
    for e in c.pop_effects():
        if isinstance(e, SendPacket):
            for m in e.msgs if piggybacked else e.msgs[:1]:
                out.append((e.addr, decode_message(m)))
    return out


def test_timing_formulas_match_memberlist() -> None:
    assert suspicion_timeout(4, 10, 1.0) == pytest.approx(4.0)
    assert suspicion_timeout(4, 30, 1.0) == pytest.approx(5.908)
    assert suspicion_timeout(4, 1, 1.0) == pytest.approx(4.0)
    assert retransmit_limit(4, 10) == 8
    assert retransmit_limit(4, 100) == 12
    assert push_pull_scale(30.0, 32) == 30.0
    assert push_pull_scale(30.0, 33) == 60.0
    assert push_pull_scale(30.0, 128) == 90.0
    # Lifeguard decay: with all k confirmations the remaining time is the minimum.
    assert remaining_suspicion_time(0, 3, 0, 2.0, 30.0) == pytest.approx(30.0)
    assert remaining_suspicion_time(3, 3, 0, 2.0, 30.0) == pytest.approx(2.0)
    assert remaining_suspicion_time(1, 3, 0, 2.0, 30.0) < 30.0


def test_ping_answered_with_ack_to_source_address() -> None:
    c = core()
    c.handle_packet(("127.0.0.9", 1), [Ping(5, "me", ip_bytes("127.0.0.8"), 99, "x").encode()])
    [(addr, ack)] = sent(c)
    assert addr == ("127.0.0.8", 99) and ack == Ack(5)


def test_ping_for_another_name_is_ignored() -> None:
    c = core()
    c.handle_packet(("127.0.0.9", 1), [Ping(5, "someone-else").encode()])
    assert sent(c) == []


def test_probe_direct_then_indirect_then_suspect() -> None:
    c = core(n_peers=4)
    c.tick(1.0)  # first probe happens within one interval
    pings = [(a, m) for a, m in sent(c) if isinstance(m, Ping)]
    assert len(pings) == 1
    _target_addr, ping = pings[0]
    # No ack: after the probe timeout, indirect pings to the 3 other peers and a TCP ping.
    c.tick(c.now + CFG.probe_timeout)
    effects = c.pop_effects()
    ind = [decode_message(m) for e in effects if isinstance(e, SendPacket) for m in e.msgs]
    ind = [m for m in ind if isinstance(m, IndirectPing)]
    assert len(ind) == 3 and all(m.node == ping.node and m.nack for m in ind)
    assert any(isinstance(e, StartTcpPing) for e in effects)
    c.tcp_ping_result(ping.seq_no, False)
    c.handle_packet(("127.0.0.3", 7000), [Nack(ping.seq_no).encode()])
    c.tick(c.now + CFG.probe_interval)
    assert c.node_map[ping.node].state == NodeStateKind.SUSPECT
    # Two nacks were missing: our own health score went up by two.
    assert c.health_score() == 2


def test_ack_ends_probe_and_improves_health() -> None:
    c = core(n_peers=2)
    c.awareness.apply_delta(3)
    c.tick(1.0)
    [(addr, ping)] = [(a, m) for a, m in sent(c) if isinstance(m, Ping)]
    c.handle_packet(addr, [Ack(ping.seq_no).encode()])
    assert c.health_score() == 2
    c.tick(c.now + 5)
    assert all(n.state == NodeStateKind.ALIVE for n in c.nodes)


def test_indirect_ping_relays_ack_or_nack() -> None:
    c = core(n_peers=1)
    req = IndirectPing(
        77, ip_bytes("127.0.0.2"), 7000, "p0", True, ip_bytes("127.0.0.50"), 9, "asker"
    )
    c.handle_packet(("127.0.0.50", 9), [req.encode()])
    [(addr, ping)] = sent(c)
    assert addr == ("127.0.0.2", 7000) and isinstance(ping, Ping)
    c.handle_packet(addr, [Ack(ping.seq_no).encode()])
    assert sent(c) == [(("127.0.0.50", 9), Ack(77))]
    c.handle_packet(
        ("127.0.0.50", 9), [IndirectPing(78, ip_bytes("127.0.0.2"), 7000, "p0", True).encode()]
    )
    sent(c)
    c.tick(c.now + CFG.probe_timeout + 0.01)
    assert (("127.0.0.50", 9), Nack(78)) in sent(c)


def test_refutes_suspicion_about_itself() -> None:
    c = core(n_peers=1)
    inc = c.node_map["me"].incarnation
    c.handle_packet(("127.0.0.2", 7000), [Suspect(inc + 5, "me", "p0").encode()])
    me = c.node_map["me"]
    assert me.state == NodeStateKind.ALIVE and me.incarnation > inc + 5
    assert c.health_score() == 1
    c.gossip_once()
    alives = [m for _a, m in sent(c, True) if isinstance(m, Alive) and m.node == "me"]
    assert alives and alives[0].incarnation == me.incarnation


def test_refutes_dead_about_itself_unless_leaving() -> None:
    c = core(n_peers=1)
    c.handle_packet(("127.0.0.2", 7000), [Dead(9, "me", "p0").encode()])
    assert c.node_map["me"].state == NodeStateKind.ALIVE
    assert c.node_map["me"].incarnation >= 10


def test_suspicion_confirmations_shorten_timeout() -> None:
    c = core(n_peers=9)
    c.handle_packet(("127.0.0.2", 7000), [Suspect(1, "p5", "p1").encode()])
    assert c.node_map["p5"].state == NodeStateKind.SUSPECT
    lo = suspicion_timeout(CFG.suspicion_mult, c.num_nodes(), CFG.probe_interval)
    s = c._suspicions["p5"]
    assert s.deadline == pytest.approx(lo * CFG.suspicion_max_timeout_mult)
    c.handle_packet(("127.0.0.3", 7000), [Suspect(1, "p5", "p2").encode()])
    c.handle_packet(("127.0.0.4", 7000), [Suspect(1, "p5", "p3").encode()])
    assert s.deadline == pytest.approx(lo)
    c.tick(lo - 0.01)
    assert c.node_map["p5"].state == NodeStateKind.SUSPECT
    c.tick(lo + 0.01)
    assert c.node_map["p5"].state == NodeStateKind.DEAD


def test_alive_with_higher_incarnation_clears_suspicion() -> None:
    c = core(n_peers=3)
    c.handle_packet(("127.0.0.2", 7000), [Suspect(1, "p1", "p0").encode()])
    c.handle_packet(
        ("127.0.0.3", 7000), [Alive(2, "p1", ip_bytes("127.0.0.3"), 7000, b"", VSN).encode()]
    )
    assert c.node_map["p1"].state == NodeStateKind.ALIVE
    c.tick(100.0)
    assert c.node_map["p1"].state == NodeStateKind.ALIVE


def test_dead_from_itself_is_left() -> None:
    c = core(n_peers=2)
    c.handle_packet(("127.0.0.2", 7000), [Dead(1, "p0", "p0").encode()])
    assert c.node_map["p0"].state == NodeStateKind.LEFT


def test_conflicting_address_is_not_taken_over() -> None:
    c = core(n_peers=1)
    c.handle_packet(
        ("127.0.0.99", 7000), [Alive(5, "p0", ip_bytes("127.0.0.99"), 7000, b"", VSN).encode()]
    )
    assert c.node_map["p0"].address == ("127.0.0.2", 7000)


def test_bad_versions_dropped_and_push_pull_refused() -> None:
    c = core()
    c.handle_packet(
        ("127.0.0.5", 1),
        [Alive(1, "bad", ip_bytes("127.0.0.5"), 1, b"", bytes([3, 2, 2, 2, 5, 5])).encode()],
    )
    assert "bad" not in c.node_map
    pp = PushPull(
        True, [PushNodeState("new", ip_bytes("127.0.0.6"), 1, b"", 1, 0, bytes([1, 5, 9, 2, 5, 5]))]
    )
    with pytest.raises(VersionMismatch):
        c.merge_remote(pp)
    assert "new" not in c.node_map


def test_push_pull_merge_treats_remote_dead_as_suspect() -> None:
    c = core(n_peers=5)
    pp = PushPull(
        False,
        [
            PushNodeState("p1", ip_bytes("127.0.0.3"), 7000, b"", 1, 2, VSN),
            PushNodeState("p2", ip_bytes("127.0.0.4"), 7000, b"", 1, 3, VSN),
            PushNodeState("x", ip_bytes("127.0.0.40"), 7000, b"", 4, 0, VSN),
        ],
    )
    c.merge_remote(pp)
    assert c.node_map["p1"].state == NodeStateKind.SUSPECT
    assert c.node_map["p2"].state == NodeStateKind.LEFT
    assert c.node_map["x"].state == NodeStateKind.ALIVE


def test_broadcast_queue_limits_and_invalidation() -> None:
    q = BroadcastQueue(4, lambda: 10)
    done = []
    q.queue(Broadcast(b"a" * 10, name="n1", notify=lambda: done.append("old")))
    q.queue(Broadcast(b"b" * 10, name="n1", notify=lambda: done.append("new")))
    assert done == ["old"] and len(q) == 1
    for _ in range(retransmit_limit(4, 10)):
        assert q.get(2, 100) == [b"b" * 10]
    assert q.get(2, 100) == [] and done == ["old", "new"]
    q.queue(Broadcast(b"x" * 50))
    q.queue(Broadcast(b"y" * 50))
    assert len(q.get(2, 60)) == 1  # only one fits


def test_gossip_piggybacks_within_udp_budget() -> None:
    c = core(n_peers=3)
    for i in range(200):
        c.alive_node(
            Alive(1, f"q{i}", ip_bytes("127.0.1.1"), 7000 + i, b"m" * 20, VSN),
            None,
            bootstrap=False,
        )
    c.pop_effects()
    c.gossip_once()
    packets = [e for e in c.pop_effects() if isinstance(e, SendPacket)]
    assert packets
    for p in packets:
        size = 2 + sum(2 + len(m) for m in p.msgs)
        assert size <= CFG.udp_buffer_size


def test_leave_broadcasts_dead_about_self() -> None:
    c = core(n_peers=2)
    done = []
    assert c.leave(lambda: done.append(True))
    assert c.node_map["me"].state == NodeStateKind.LEFT
    for _ in range(20):
        c.gossip_once()
    msgs = [m for _a, m in sent(c, True) if isinstance(m, Dead)]
    assert msgs and msgs[0].node == msgs[0].from_ == "me"
    assert done == [True]


def test_user_messages_reach_delegate() -> None:
    got = []

    class D:
        def __getattr__(self, name):
            return lambda *a, **k: (
                b"" if name in ("node_meta", "ack_payload", "local_state") else []
            )

        def notify_msg(self, payload: bytes) -> None:
            got.append(payload)

    c = SwimCore("me", "127.0.0.1", 1, CFG, D(), random.Random(1))
    c.handle_packet(("127.0.0.2", 1), [bytes([MsgType.USER]) + b"\x03hello"])
    assert got == [b"\x03hello"]


@pytest.mark.parametrize("fails_probe", [True, False])
def test_refused_tcp_fallback_fails_the_probe_at_once(fails_probe: bool) -> None:
    cfg = CFG.with_(refused_fails_probe=fails_probe)
    c = SwimCore("me", "127.0.0.1", 7000, cfg, rng=random.Random(1), now=0.0)
    c.start(0.0)
    for i in range(4):
        c.alive_node(
            Alive(1, f"p{i}", ip_bytes(f"127.0.0.{i + 2}"), 7000, b"", VSN), None, bootstrap=False
        )
    c.pop_effects()
    c.tick(1.0)
    [(_addr, ping)] = [(a, m) for a, m in sent(c) if isinstance(m, Ping)]
    c.tick(c.now + cfg.probe_timeout)
    [tcp] = [e for e in c.pop_effects() if isinstance(e, StartTcpPing)]
    c.tcp_ping_result(tcp.seq, False, c.now + 0.001, refused=True)
    state = c.node_map[ping.node].state
    if fails_probe:
        # Suspected half a probe interval early, and the suspicion goes out at once.
        assert state == NodeStateKind.SUSPECT
        msgs = [m for _a, m in sent(c, True)]
        assert any(isinstance(m, Suspect) and m.node == ping.node for m in msgs)
    else:
        assert state == NodeStateKind.ALIVE  # memberlist: only at the probe deadline
        c.tick(c.now + cfg.probe_interval)
        assert c.node_map[ping.node].state == NodeStateKind.SUSPECT


def test_suspicion_is_gossiped_at_once() -> None:
    c = core(n_peers=5)
    c.handle_packet(("127.0.0.2", 7000), [Suspect(1, "p3", "p0").encode()])
    # No tick has passed: the round ran as the news arrived.
    relayed = [a for a, m in sent(c, True) if isinstance(m, Suspect) and m.node == "p3"]
    assert len(relayed) == CFG.gossip_nodes
    # Old news (a repeat from the same member) starts no round.
    c.handle_packet(("127.0.0.2", 7000), [Suspect(1, "p3", "p0").encode()])
    assert sent(c, True) == []
