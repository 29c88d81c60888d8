"""Our LZW codec against Go's compress/lzw output captured from real Serf agents."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.gossip import codec, keyring, lzw, wire
from consulpy.gossip.messages import MsgType
from tests.gossip.captured import CAPTURE_KEY, load


def _go_compressed_buffers() -> list[bytes]:
    """Every LZW buffer Go produced in the captures (UDP packets and TCP streams)."""
    out = []
    for name, key in (("serf_plain.jsonl", None), ("serf_encrypted.jsonl", CAPTURE_KEY)):
        cap = load(name)
        for _to, pkt in cap.packets:
            _label, rest = wire.strip_label(pkt)
            if key:
                rest = keyring.decrypt([key], rest)
            if rest[0] == MsgType.HAS_CRC:
                rest = rest[5:]
            if rest[0] == MsgType.COMPRESS:
                out.append(codec.unpack(rest[1:])[b"Buf"])
        for data in cap.streams.values():
            if key:
                data = keyring.decrypt([key], data[5:], data[:5])
            assert data[0] == MsgType.COMPRESS
            out.append(codec.unpack_prefix(data, 1)[0][b"Buf"])
    return out


GO_BUFFERS = _go_compressed_buffers()


def test_captures_contain_go_lzw_streams() -> None:
    assert len(GO_BUFFERS) >= 10


@pytest.mark.parametrize("buf", GO_BUFFERS)
def test_go_streams_decode_and_reencode_byte_for_byte(buf: bytes) -> None:
    plain = lzw.decompress(buf)
    assert plain
    # Same algorithm, same output: what we write is exactly what Go writes.
    assert lzw.compress(plain) == buf


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000))
def test_round_trip_random(data: bytes) -> None:
    assert lzw.decompress(lzw.compress(data)) == data


@pytest.mark.parametrize("size", [0, 1, 255, 4096, 70_000])
def test_round_trip_repetitive_crosses_table_resets(size: int) -> None:
    data = bytes((i * 7 + i // 13) % 5 for i in range(size))
    assert lzw.decompress(lzw.compress(data)) == data


def test_empty_stream_is_clear_then_eof() -> None:
    assert lzw.decompress(lzw.compress(b"")) == b""


def test_truncated_stream_is_rejected() -> None:
    c = lzw.compress(b"hello hello hello")
    with pytest.raises(lzw.LZWError):
        lzw.decompress(c[:-2])


def test_invalid_code_is_rejected() -> None:
    # Clear code then a code far above the table's next entry.
    with pytest.raises(lzw.LZWError):
        lzw.decompress(bytes([0x00, 0xFE, 0xFF, 0xFF]))


def test_output_limit() -> None:
    c = lzw.compress(b"a" * 100_000)
    with pytest.raises(lzw.LZWError):
        lzw.decompress(c, limit=1000)
