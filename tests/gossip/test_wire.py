"""memberlist/Serf wire format against bytes captured from real Debian serf agents."""

from __future__ import annotations

import os

import pytest

from consulpy.gossip import codec, keyring, wire
from consulpy.gossip.keyring import Keyring
from consulpy.gossip.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MsgType,
    Nack,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    decode_message,
)
from consulpy.gossip.serf_messages import (
    Join,
    KeyResponse,
    Leave,
    QueryMsg,
    QueryResponseMsg,
    SerfMsg,
    SerfPushPull,
    UserEventMsg,
    decode_key_request,
    decode_tags,
    encode_key_request,
    encode_tags,
)
from consulpy.gossip.wire import NeedMore, Security, WireError
from tests.gossip.captured import CAPTURE_KEY, load

PLAIN = load("serf_plain.jsonl")
ENC = load("serf_encrypted.jsonl")
SEC_PLAIN = Security()
SEC_ENC = Security(keyring=Keyring([CAPTURE_KEY]))

SERF_DECODERS = {
    SerfMsg.LEAVE: Leave.decode,
    SerfMsg.JOIN: Join.decode,
    SerfMsg.USER_EVENT: UserEventMsg.decode,
    SerfMsg.QUERY: QueryMsg.decode,
    SerfMsg.QUERY_RESPONSE: QueryResponseMsg.decode,
}


def all_messages(cap, sec) -> list[bytes]:
    out = []
    for _to, pkt in cap.packets:
        out += wire.decode_packet(pkt, sec)
    return out


@pytest.mark.parametrize(
    ("cap", "sec"), [(PLAIN, SEC_PLAIN), (ENC, SEC_ENC)], ids=["plain", "encrypted"]
)
def test_every_captured_message_decodes_and_reencodes_identically(cap, sec) -> None:
    seen_types = set()
    seen_serf = set()
    for raw in all_messages(cap, sec):
        m = decode_message(raw)
        if isinstance(m, tuple):
            payload = m[1]
            t = payload[0]
            seen_serf.add(t)
            decoded = SERF_DECODERS[t](payload[1:])
            # Go writes struct keys sorted and strings as raw: so do we, byte for byte.
            assert decoded.encode() == payload
            continue
        seen_types.add(raw[0])
        if isinstance(m, Ack) and m.payload:
            # Serf's ack carries a coordinate: [1][msgpack Coordinate].
            assert m.payload[0] == 1
            assert b"Vec" in codec.unpack(m.payload[1:])
        assert m.encode() == raw, type(m)
    assert {
        MsgType.PING,
        MsgType.INDIRECT_PING,
        MsgType.ACK,
        MsgType.NACK,
        MsgType.SUSPECT,
        MsgType.ALIVE,
        MsgType.DEAD,
    } <= seen_types
    assert {
        SerfMsg.JOIN,
        SerfMsg.LEAVE,
        SerfMsg.USER_EVENT,
        SerfMsg.QUERY,
        SerfMsg.QUERY_RESPONSE,
    } <= seen_serf


def test_captured_values() -> None:
    alive = [decode_message(m) for m in all_messages(PLAIN, SEC_PLAIN) if m[0] == MsgType.ALIVE]
    a = alive[0]
    assert isinstance(a, Alive)
    assert a.vsn == bytes([1, 5, 2, 2, 5, 5])
    assert len(a.addr) == 4
    assert decode_tags(a.meta)["role"] in ("A", "B", "C")
    # The paused member was suspected and refuted with a higher incarnation.
    suspects = [
        decode_message(m) for m in all_messages(PLAIN, SEC_PLAIN) if m[0] == MsgType.SUSPECT
    ]
    assert suspects and all(isinstance(x, Suspect) and x.node == "node-C" for x in suspects)
    assert max(x.incarnation for x in alive if x.node == "node-C") > suspects[0].incarnation
    events = [
        UserEventMsg.decode(m[2:])
        for m in all_messages(PLAIN, SEC_PLAIN)
        if m[0] == MsgType.USER and m[1] == SerfMsg.USER_EVENT
    ]
    by_name = {e.name: e for e in events}
    assert by_name["deploy"].payload == b"v1-payload" and by_name["deploy"].cc is False
    assert by_name["hello"].cc is True
    queries = [
        QueryMsg.decode(m[2:])
        for m in all_messages(PLAIN, SEC_PLAIN)
        if m[0] == MsgType.USER and m[1] == SerfMsg.QUERY
    ]
    assert queries[0].name == "uptime" and queries[0].timeout_ns == 2_000_000_000
    dead = [decode_message(m) for m in all_messages(PLAIN, SEC_PLAIN) if m[0] == MsgType.DEAD]
    assert any(isinstance(d, Dead) and d.node == d.from_ == "node-B" for d in dead)


def test_packet_layers_seen_on_the_wire() -> None:
    firsts = {pkt[0] for _to, pkt in PLAIN.packets}
    # Bare pings, LZW-compressed acks, CRC-wrapped gossip: a receiver must handle all three.
    assert {MsgType.PING, MsgType.COMPRESS, MsgType.HAS_CRC} <= firsts
    assert {pkt[0] for _to, pkt in ENC.packets} == {1}  # encryption version 1


@pytest.mark.parametrize(
    ("cap", "sec"), [(PLAIN, SEC_PLAIN), (ENC, SEC_ENC)], ids=["plain", "encrypted"]
)
def test_captured_push_pull_streams(cap, sec) -> None:
    kinds = set()
    for data in cap.streams.values():
        msg, used = wire.parse_stream(data, sec)
        assert used == len(data)
        kinds.add(msg.type)
        if msg.type == MsgType.PING:
            assert msg.ping is not None and msg.ping.node == "node-C"  # TCP fallback probe
        elif msg.type == MsgType.ACK:
            assert msg.ack is not None
        else:
            assert msg.type == MsgType.PUSH_PULL
            pp = msg.push_pull
            assert pp is not None and pp.join is True
            assert all(n.vsn == bytes([1, 5, 2, 2, 5, 5]) for n in pp.nodes)
            assert pp.user_state[0] == SerfMsg.PUSH_PULL
            spp = SerfPushPull.decode(pp.user_state[1:])
            assert len(spp.events) == 512
            assert wire.encode_push_pull(pp)[0] == MsgType.PUSH_PULL
        # Every strict prefix is "need more", never an error.
        for cut in (1, 3, len(data) // 2, len(data) - 1):
            with pytest.raises(NeedMore):
                wire.parse_stream(data[:cut], sec)
    assert kinds == {MsgType.PUSH_PULL, MsgType.PING, MsgType.ACK}


def test_encrypted_capture_rejected_with_wrong_key_or_without_key() -> None:
    wrong = Security(keyring=Keyring([os.urandom(32)]))
    for _to, pkt in ENC.packets[:5]:
        with pytest.raises(WireError):
            wire.decode_packet(pkt, wrong)
    data = next(iter(ENC.streams.values()))
    with pytest.raises(WireError):
        wire.parse_stream(data, wrong)
    with pytest.raises(WireError, match="encryption is not configured"):
        wire.parse_stream(data, SEC_PLAIN)
    plain_stream = next(iter(PLAIN.streams.values()))
    with pytest.raises(WireError, match="not encrypted"):
        wire.parse_stream(plain_stream, SEC_ENC)


@pytest.mark.parametrize("size", [16, 24, 32])
def test_packet_round_trip_encrypted_with_label(size: int) -> None:
    sec = Security(keyring=Keyring([os.urandom(size)]), label=b"dc1")
    msgs = [
        Ping(7, "n1", b"\x7f\x00\x00\x01", 7946, "n2").encode(),
        Suspect(3, "n3", "n1").encode(),
        Alive(1, "n4", b"\x7f\x00\x00\x04", 1, b"", b"").encode(),
    ]
    pkt = wire.encode_packet(wire.make_compound(msgs), sec, crc=True)
    assert pkt[:5] == b"\xf4\x03dc1"
    assert wire.decode_packet(pkt, sec) == msgs
    other_label = Security(keyring=sec.keyring, label=b"dc2")
    with pytest.raises(WireError, match="label"):
        wire.decode_packet(pkt, other_label)


def test_crc_mismatch_rejected() -> None:
    pkt = bytearray(wire.encode_packet(Nack(5).encode(), SEC_PLAIN, crc=True))
    pkt[-1] ^= 0xFF
    with pytest.raises(WireError, match="CRC"):
        wire.decode_packet(bytes(pkt), SEC_PLAIN)


def test_compound_truncated_parts_are_dropped() -> None:
    c = wire.make_compound([b"\x0babc", b"\x0bdefgh"])
    parts, truncated = wire.split_compound(c[1:-2])
    assert parts == [b"\x0babc"] and truncated == 1


def test_stream_round_trips() -> None:
    sec = Security(keyring=Keyring([os.urandom(16)]))
    pp = PushPull(
        True,
        [PushNodeState("a", b"\x7f\x00\x00\x01", 1, b"m", 3, 1, bytes([1, 5, 2, 2, 5, 5]))],
        b"user-state",
    )
    for s in (sec, SEC_PLAIN, Security(compression=False)):
        data = wire.encode_stream(wire.encode_push_pull(pp), s)
        msg, used = wire.parse_stream(data + b"trailing", s)
        assert used == len(data) and msg.push_pull == pp
    ping = Ping(9, "x")
    msg, _ = wire.parse_stream(wire.encode_stream(ping.encode(), sec), sec)
    assert msg.ping == ping
    msg, _ = wire.parse_stream(wire.encode_stream(wire.encode_user_stream(b"hi"), sec), sec)
    assert msg.user == b"hi"


def test_encryption_version_0_stream() -> None:
    sec = Security(keyring=Keyring([os.urandom(32)]), encryption_version=0)
    data = wire.encode_stream(Ping(1, "n").encode(), sec)
    assert data[5] == 0
    msg, _ = wire.parse_stream(data, sec)
    assert msg.ping == Ping(1, "n")


def test_message_round_trips() -> None:
    for m in (
        Ping(1, "n", b"\x7f\x00\x00\x01", 2, "s"),
        Ping(2, ""),
        IndirectPing(3, b"\x7f\x00\x00\x01", 5, "t", True, b"\x7f\x00\x00\x02", 6, "s"),
        Ack(4, b"p"),
        Nack(5),
        Suspect(1, "a", "b"),
        Dead(2, "a", "a"),
        Alive(3, "a", b"\x00" * 16, 9, b"meta", b"\x01\x05\x02\x02\x05\x05"),
    ):
        assert decode_message(m.encode()) == m


def test_non_utf8_node_names_survive() -> None:
    name = b"n\xff\xfe".decode("utf-8", "surrogateescape")
    m = Suspect(1, name, "x")
    raw = m.encode()
    assert b"n\xff\xfe" in raw
    assert decode_message(raw) == m


def test_serf_helpers() -> None:
    assert decode_tags(encode_tags({"role": "web", "dc": "x"})) == {"role": "web", "dc": "x"}
    assert encode_tags({"role": "web", "dc": "x"})[0] == 0xFF
    assert decode_key_request(encode_key_request(b"k" * 16)) == b"k" * 16
    kr = KeyResponse(True, "", ["a", "b"], "a")
    assert KeyResponse.decode(kr.encode()) == kr


def test_bad_input_is_a_clean_error() -> None:
    for junk in (
        b"",
        b"\x07",
        b"\x07\x05\x00",
        b"\x09\x81",
        b"\x0c\x00",
        b"\xf4",
        b"\xf4\x00",
        os.urandom(64),
    ):
        try:
            for m in wire.decode_packet(junk, SEC_PLAIN):
                decode_message(m)
        except (WireError, codec.DecodeError):
            pass
    with pytest.raises(WireError):
        wire.decode_packet(keyring.encrypt(1, os.urandom(16), b"x"), SEC_ENC)
