"""The wire layers around memberlist messages, for UDP packets and TCP streams.

Outermost first: label header -> AES-GCM encryption -> CRC -> compression -> compound ->
message. Everything here is pure (bytes in, bytes out) so it can be checked against bytes
captured from real Serf agents; sockets live in ``transport``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

from consulpy.gossip import codec, keyring, lzw
from consulpy.gossip.codec import DecodeError
from consulpy.gossip.messages import (
    Ack,
    ErrResp,
    MsgType,
    Ping,
    PushNodeState,
    PushPull,
    PushPullHeader,
    decode_compress,
    encode_compress,
    encode_user_header,
)

LZW_ALGO = 0
COMPOUND_HEADER_OVERHEAD = 2  # type byte + count byte
COMPOUND_OVERHEAD = 2  # per part: u16 length
USER_MSG_OVERHEAD = 1
MAX_COMPOUND_PARTS = 255
MAX_PUSH_STATE_BYTES = 20 * 1024 * 1024
MAX_PUSH_NODES = 100_000
# Largest datagram we accept; memberlist itself reads into a 65536-byte buffer.
MAX_PACKET = 65536


class WireError(ValueError):
    """A packet or stream was rejected (bad label, failed decryption, bad CRC, bad framing)."""


@dataclass(slots=True)
class Security:
    """What the wire layers need to know: the keyring and the label, and strictness."""

    keyring: keyring.Keyring | None = None
    label: bytes = b""
    verify_incoming: bool = True
    verify_outgoing: bool = True
    encryption_version: int = 1
    compression: bool = True
    skip_inbound_label_check: bool = False

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None and self.keyring.enabled

    def encrypt_overhead(self) -> int:
        if not (self.encrypted and self.verify_outgoing):
            return 0
        return keyring.OVERHEAD_V0 if self.encryption_version == 0 else keyring.OVERHEAD_V1

    def label_overhead(self) -> int:
        return 2 + len(self.label) if self.label else 0


# ---------------------------------------------------------------- compound / crc / label


def make_compound(msgs: list[bytes]) -> bytes:
    if len(msgs) > MAX_COMPOUND_PARTS:
        raise ValueError("too many parts for one compound message")
    out = bytearray([MsgType.COMPOUND, len(msgs)])
    for m in msgs:
        if len(m) > 0xFFFF:
            raise ValueError("compound part too large")
        out += struct.pack(">H", len(m))
    for m in msgs:
        out += m
    return bytes(out)


def make_compounds(msgs: list[bytes]) -> list[bytes]:
    """Split into compounds of at most 255 parts (a single message is sent bare)."""
    if len(msgs) == 1:
        return [msgs[0]]
    return [
        make_compound(msgs[i : i + MAX_COMPOUND_PARTS])
        for i in range(0, len(msgs), MAX_COMPOUND_PARTS)
    ]


def split_compound(body: bytes) -> tuple[list[bytes], int]:
    """Parts of a compound body (after the type byte); also how many were truncated."""
    if len(body) < 1:
        raise WireError("missing compound length byte")
    n = body[0]
    pos = 1
    if len(body) < pos + 2 * n:
        raise WireError("truncated compound length slice")
    lengths = struct.unpack_from(f">{n}H", body, pos)
    pos += 2 * n
    parts = []
    truncated = 0
    for i, ln in enumerate(lengths):
        if len(body) < pos + ln:
            truncated = n - i
            break
        parts.append(body[pos : pos + ln])
        pos += ln
    return parts, truncated


def add_crc(msg: bytes) -> bytes:
    return bytes([MsgType.HAS_CRC]) + struct.pack(">I", zlib.crc32(msg)) + msg


def add_label(label: bytes, data: bytes) -> bytes:
    if not label:
        return data
    if len(label) > 255:
        raise ValueError("label too long")
    return bytes([MsgType.HAS_LABEL, len(label)]) + label + data


def strip_label(data: bytes) -> tuple[bytes, bytes]:
    """Return (label, rest); label is empty when there is no label header."""
    if not data or data[0] != MsgType.HAS_LABEL:
        return b"", data
    if len(data) < 2:
        raise WireError("truncated label header")
    size = data[1]
    if size < 1:
        raise WireError("label header cannot be empty when present")
    if len(data) < 2 + size:
        raise WireError("truncated label")
    return data[2 : 2 + size], data[2 + size :]


def compress_payload(msg: bytes) -> bytes:
    return encode_compress(LZW_ALGO, lzw.compress(msg))


def decompress_payload(body: bytes) -> bytes:
    algo, buf = decode_compress(body)
    if algo != LZW_ALGO:
        raise WireError(f"unsupported compression algorithm {algo}")
    try:
        return lzw.decompress(buf)
    except lzw.LZWError as exc:
        raise WireError(f"bad compressed payload: {exc}") from exc


# ---------------------------------------------------------------- packets


def encode_packet(msg: bytes, sec: Security, crc: bool) -> bytes:
    """Wrap one (possibly compound) message for UDP. ``crc`` when the peer's PMax >= 5."""
    if sec.compression:
        c = compress_payload(msg)
        if len(c) < len(msg):
            msg = c
    if crc:
        msg = add_crc(msg)
    if sec.encrypted and sec.verify_outgoing:
        primary = sec.keyring.primary()  # type: ignore[union-attr]
        assert primary is not None
        msg = keyring.encrypt(sec.encryption_version, primary, msg, sec.label)
    return add_label(sec.label, msg)


def decode_packet(data: bytes, sec: Security) -> list[bytes]:
    """Undo every wrapping layer; return the plain messages (compounds flattened)."""
    if len(data) > MAX_PACKET:
        raise WireError("packet too large")
    label, buf = strip_label(data)
    if not sec.skip_inbound_label_check and label != sec.label:
        raise WireError(f"discarding packet with unacceptable label {label!r}")
    if sec.encrypted:
        try:
            buf = keyring.decrypt(sec.keyring.keys(), buf, label)  # type: ignore[union-attr]
        except keyring.DecryptError as exc:
            if sec.verify_incoming:
                raise WireError(f"decrypt packet failed: {exc}") from exc
    if buf and buf[0] == MsgType.HAS_CRC:
        if len(buf) < 5:
            raise WireError("truncated CRC header")
        (want,) = struct.unpack_from(">I", buf, 1)
        buf = buf[5:]
        if zlib.crc32(buf) != want:
            raise WireError("CRC mismatch")
    out: list[bytes] = []
    _flatten(buf, out, 0)
    return out


def _flatten(msg: bytes, out: list[bytes], depth: int) -> None:
    if depth > 4:
        raise WireError("message nesting too deep")
    if not msg:
        raise WireError("empty message")
    t = msg[0]
    if t == MsgType.COMPOUND:
        parts, _ = split_compound(msg[1:])
        for p in parts:
            _flatten(p, out, depth + 1)
    elif t == MsgType.COMPRESS:
        _flatten(decompress_payload(msg[1:]), out, depth + 1)
    else:
        out.append(msg)


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class StreamMessage:
    """A decoded TCP stream message."""

    type: int
    ping: Ping | None = None
    ack: Ack | None = None
    push_pull: PushPull | None = None
    user: bytes = b""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class NeedMore(Exception):
    """The stream parser needs more bytes before it can decide."""


def encode_push_pull(pp: PushPull) -> bytes:
    hdr = PushPullHeader(len(pp.nodes), len(pp.user_state), pp.join)
    parts = [bytes([MsgType.PUSH_PULL]), hdr.encode_body()]
    parts += [n.encode_body() for n in pp.nodes]
    parts.append(pp.user_state)
    return b"".join(parts)


def encode_user_stream(payload: bytes) -> bytes:
    return bytes([MsgType.USER]) + encode_user_header(len(payload)) + payload


def encode_stream(msg: bytes, sec: Security) -> bytes:
    """Frame a plain stream message: compress (always, when enabled), encrypt, label."""
    if sec.compression:
        msg = compress_payload(msg)
    if sec.encrypted and sec.verify_outgoing:
        primary = sec.keyring.primary()  # type: ignore[union-attr]
        assert primary is not None
        body = len(msg) + 16 - len(msg) % 16 if sec.encryption_version == 0 else len(msg)
        size = keyring.VERSION_SIZE + keyring.NONCE_SIZE + body + keyring.TAG_SIZE
        header = bytes([MsgType.ENCRYPT]) + struct.pack(">I", size)
        sealed = keyring.encrypt(sec.encryption_version, primary, msg, header + sec.label)
        assert len(sealed) == size
        msg = header + sealed
    return add_label(sec.label, msg)


def parse_stream(data: bytes, sec: Security) -> tuple[StreamMessage, int]:
    """Parse one stream message from the front of ``data``.

    Returns the message and how many bytes it took. Raises NeedMore when ``data`` is a
    valid but incomplete prefix, WireError/DecodeError on bad input.
    """
    pos = 0
    label = b""
    if data[:1] == bytes([MsgType.HAS_LABEL]):
        if len(data) < 2 or len(data) < 2 + data[1]:
            raise NeedMore
        label, _ = strip_label(data)
        pos = 2 + len(label)
    if not sec.skip_inbound_label_check and label != sec.label:
        raise WireError(f"discarding stream with unacceptable label {label!r}")
    if len(data) <= pos:
        raise NeedMore
    if data[pos] == MsgType.ENCRYPT:
        if not sec.encrypted:
            raise WireError("Remote state is encrypted and encryption is not configured")
        if len(data) < pos + 5:
            raise NeedMore
        (size,) = struct.unpack_from(">I", data, pos + 1)
        if size > MAX_PUSH_STATE_BYTES:
            raise WireError(f"remote node state is larger than limit ({size})")
        end = pos + 5 + size
        if len(data) < end:
            raise NeedMore
        aad = data[pos : pos + 5] + label
        try:
            plain = keyring.decrypt(sec.keyring.keys(), data[pos + 5 : end], aad)  # type: ignore[union-attr]
        except keyring.DecryptError as exc:
            raise WireError(f"failed to decrypt remote state: {exc}") from exc
        try:
            msg, _ = _parse_inner(plain)
        except NeedMore:
            raise WireError("truncated message inside encrypted stream") from None
        return msg, end
    if sec.encrypted and sec.verify_incoming:
        raise WireError("Encryption is configured but remote state is not encrypted")
    msg, used = _parse_inner(data[pos:])
    return msg, pos + used


def _parse_inner(buf: bytes) -> tuple[StreamMessage, int]:
    if not buf:
        raise NeedMore
    if buf[0] == MsgType.COMPRESS:
        obj, used = _obj(buf, 1)
        m = codec.as_map(obj, "compress")
        if codec.get_int(m, "Algo") != LZW_ALGO:
            raise WireError("unsupported compression algorithm")
        try:
            plain = lzw.decompress(codec.get_bytes(m, "Buf"))
        except lzw.LZWError as exc:
            raise WireError(f"bad compressed stream: {exc}") from exc
        try:
            msg, _ = _parse_plain(plain)
        except NeedMore:
            raise WireError("truncated message inside compressed stream") from None
        return msg, used
    return _parse_plain(buf)


def _obj(buf: bytes, pos: int) -> tuple[Any, int]:
    unpacker = msgpack.Unpacker(
        raw=True, strict_map_key=False, max_buffer_size=MAX_PUSH_STATE_BYTES + 1024
    )
    unpacker.feed(buf[pos:])
    try:
        obj = unpacker.unpack()
    except msgpack.OutOfData:
        raise NeedMore from None
    except (ValueError, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"bad msgpack in stream: {exc}") from exc
    return obj, pos + unpacker.tell()


def _parse_plain(buf: bytes) -> tuple[StreamMessage, int]:
    if not buf:
        raise NeedMore
    t = buf[0]
    if t == MsgType.PUSH_PULL:
        # One Unpacker walks header + node states without re-copying the buffer.
        unpacker = msgpack.Unpacker(
            raw=True, strict_map_key=False, max_buffer_size=MAX_PUSH_STATE_BYTES + 1024
        )
        unpacker.feed(buf[1:])
        try:
            hdr = PushPullHeader.from_map(codec.as_map(unpacker.unpack(), "pushPullHeader"))
            if hdr.nodes > MAX_PUSH_NODES or hdr.user_state_len > MAX_PUSH_STATE_BYTES:
                raise WireError("push-pull state exceeds limits")
            nodes = [
                PushNodeState.from_map(codec.as_map(unpacker.unpack(), "pushNodeState"))
                for _ in range(hdr.nodes)
            ]
        except msgpack.OutOfData:
            raise NeedMore from None
        except (ValueError, msgpack.FormatError, msgpack.StackError) as exc:
            if isinstance(exc, WireError | DecodeError):
                raise
            raise DecodeError(f"bad push-pull: {exc}") from exc
        pos = 1 + unpacker.tell()
        end = pos + hdr.user_state_len
        if len(buf) < end:
            raise NeedMore
        pp = PushPull(hdr.join, nodes, bytes(buf[pos:end]))
        return StreamMessage(t, push_pull=pp), end
    if t == MsgType.PING:
        obj, used = _obj(buf, 1)
        return StreamMessage(t, ping=Ping.decode(codec.pack(obj))), used
    if t == MsgType.ACK:
        obj, used = _obj(buf, 1)
        return StreamMessage(t, ack=Ack.decode(codec.pack(obj))), used
    if t == MsgType.ERR:
        obj, used = _obj(buf, 1)
        return StreamMessage(t, error=ErrResp.decode(codec.pack(obj)).error), used
    if t == MsgType.USER:
        obj, used = _obj(buf, 1)
        n = codec.get_int(codec.as_map(obj, "userMsgHeader"), "UserMsgLen")
        if n < 0 or n > MAX_PUSH_STATE_BYTES:
            raise WireError("bad user message length")
        if len(buf) < used + n:
            raise NeedMore
        return StreamMessage(t, user=bytes(buf[used : used + n])), used + n
    raise WireError(f"unexpected stream message type {t}")
