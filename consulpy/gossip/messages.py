"""memberlist's messages: type bytes and msgpack bodies keyed by Go field names.

Every body is a msgpack map whose keys are the Go struct field names; go-msgpack v0.5 wrote
them in sorted order, and we do the same so our bytes match a Go sender's.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from consulpy.gossip import codec
from consulpy.gossip.codec import DecodeError, get_bool, get_bytes, get_str, get_uint, text

META_MAX_SIZE = 512


class MsgType(enum.IntEnum):
    """Leading byte of every memberlist message. Append-only: these numbers are protocol."""

    PING = 0
    INDIRECT_PING = 1
    ACK = 2
    SUSPECT = 3
    ALIVE = 4
    DEAD = 5
    PUSH_PULL = 6
    COMPOUND = 7
    USER = 8
    COMPRESS = 9
    ENCRYPT = 10
    NACK = 11
    HAS_CRC = 12
    ERR = 13
    HAS_LABEL = 244


class NodeStateKind(enum.IntEnum):
    """memberlist's per-node state, as carried in push-pull ``State``."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


def _body(fields: dict[str, Any]) -> bytes:
    return codec.pack({k.encode(): v for k, v in sorted(fields.items())})


def _map(body: bytes, what: str) -> dict[bytes, Any]:
    return codec.as_map(codec.unpack(body), what)


@dataclass(slots=True)
class Ping:
    seq_no: int
    node: str
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""

    def encode(self) -> bytes:
        f: dict[str, Any] = {"SeqNo": self.seq_no, "Node": text(self.node)}
        if self.source_addr:
            f["SourceAddr"] = self.source_addr
        if self.source_port:
            f["SourcePort"] = self.source_port
        if self.source_node:
            f["SourceNode"] = text(self.source_node)
        return bytes([MsgType.PING]) + _body(f)

    @classmethod
    def decode(cls, body: bytes) -> Ping:
        m = _map(body, "ping")
        return cls(
            get_uint(m, "SeqNo", 32),
            get_str(m, "Node"),
            get_bytes(m, "SourceAddr"),
            get_uint(m, "SourcePort", 16),
            get_str(m, "SourceNode"),
        )


@dataclass(slots=True)
class IndirectPing:
    seq_no: int
    target: bytes
    port: int
    node: str
    nack: bool = False
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""

    def encode(self) -> bytes:
        f: dict[str, Any] = {
            "SeqNo": self.seq_no,
            "Target": self.target,
            "Port": self.port,
            "Node": text(self.node),
            "Nack": self.nack,
        }
        if self.source_addr:
            f["SourceAddr"] = self.source_addr
        if self.source_port:
            f["SourcePort"] = self.source_port
        if self.source_node:
            f["SourceNode"] = text(self.source_node)
        return bytes([MsgType.INDIRECT_PING]) + _body(f)

    @classmethod
    def decode(cls, body: bytes) -> IndirectPing:
        m = _map(body, "indirectPingReq")
        return cls(
            get_uint(m, "SeqNo", 32),
            get_bytes(m, "Target"),
            get_uint(m, "Port", 16),
            get_str(m, "Node"),
            get_bool(m, "Nack"),
            get_bytes(m, "SourceAddr"),
            get_uint(m, "SourcePort", 16),
            get_str(m, "SourceNode"),
        )


@dataclass(slots=True)
class Ack:
    seq_no: int
    payload: bytes = b""

    def encode(self) -> bytes:
        # Go sends a nil slice (msgpack nil) for an empty payload.
        return bytes([MsgType.ACK]) + _body({"SeqNo": self.seq_no, "Payload": self.payload or None})

    @classmethod
    def decode(cls, body: bytes) -> Ack:
        m = _map(body, "ackResp")
        return cls(get_uint(m, "SeqNo", 32), get_bytes(m, "Payload"))


@dataclass(slots=True)
class Nack:
    seq_no: int

    def encode(self) -> bytes:
        return bytes([MsgType.NACK]) + _body({"SeqNo": self.seq_no})

    @classmethod
    def decode(cls, body: bytes) -> Nack:
        return cls(get_uint(_map(body, "nackResp"), "SeqNo", 32))


@dataclass(slots=True)
class ErrResp:
    error: str

    def encode(self) -> bytes:
        return bytes([MsgType.ERR]) + _body({"Error": text(self.error)})

    @classmethod
    def decode(cls, body: bytes) -> ErrResp:
        return cls(get_str(_map(body, "errResp"), "Error"))


@dataclass(slots=True)
class _Accusation:
    """A claim about a node at an incarnation, made by ``from_`` (suspect and dead share
    memberlist's wire shape and differ only in their type byte)."""

    incarnation: int
    node: str
    from_: str
    TYPE: ClassVar[MsgType]
    NAME: ClassVar[str]

    def encode(self) -> bytes:
        return bytes([self.TYPE]) + _body(
            {"Incarnation": self.incarnation, "Node": text(self.node), "From": text(self.from_)}
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        m = _map(body, cls.NAME)
        return cls(get_uint(m, "Incarnation", 32), get_str(m, "Node"), get_str(m, "From"))


class Suspect(_Accusation):
    __slots__ = ()
    TYPE = MsgType.SUSPECT
    NAME = "suspect"


class Dead(_Accusation):
    __slots__ = ()
    TYPE = MsgType.DEAD
    NAME = "dead"


@dataclass(slots=True)
class Alive:
    incarnation: int
    node: str
    addr: bytes
    port: int
    meta: bytes = b""
    vsn: bytes = b""

    def encode(self) -> bytes:
        return _encode_alive(self.incarnation, self.node, self.addr, self.port, self.meta, self.vsn)

    @classmethod
    def decode(cls, body: bytes) -> Alive:
        m = _map(body, "alive")
        return cls(
            get_uint(m, "Incarnation", 32),
            get_str(m, "Node"),
            get_bytes(m, "Addr"),
            get_uint(m, "Port", 16),
            get_bytes(m, "Meta"),
            get_bytes(m, "Vsn"),
        )


@functools.lru_cache(maxsize=8192)
def _encode_alive(
    incarnation: int, node: str, addr: bytes, port: int, meta: bytes, vsn: bytes
) -> bytes:
    """Cached: every member that learns a node's news re-broadcasts the same alive message;
    one process encodes it once (and the simulation's thousands of cores share the bytes)."""
    return bytes([MsgType.ALIVE]) + _body(
        {
            "Incarnation": incarnation,
            "Node": text(node),
            "Addr": addr,
            "Port": port,
            "Meta": meta,
            "Vsn": vsn,
        }
    )


@dataclass(slots=True)
class PushPullHeader:
    nodes: int
    user_state_len: int
    join: bool

    def encode_body(self) -> bytes:
        return _body({"Nodes": self.nodes, "UserStateLen": self.user_state_len, "Join": self.join})

    @classmethod
    def from_map(cls, m: dict[bytes, Any]) -> PushPullHeader:
        nodes = codec.get_int(m, "Nodes")
        usl = codec.get_int(m, "UserStateLen")
        if nodes < 0 or usl < 0:
            raise DecodeError("pushPullHeader: negative count")
        return cls(nodes, usl, get_bool(m, "Join"))


@dataclass(slots=True)
class PushNodeState:
    name: str
    addr: bytes
    port: int
    meta: bytes
    incarnation: int
    state: int
    vsn: bytes = b""

    def encode_body(self) -> bytes:
        return _body(
            {
                "Name": text(self.name),
                "Addr": self.addr,
                "Port": self.port,
                "Meta": self.meta,
                "Incarnation": self.incarnation,
                "State": self.state,
                "Vsn": self.vsn,
            }
        )

    @classmethod
    def from_map(cls, m: dict[bytes, Any]) -> PushNodeState:
        return cls(
            get_str(m, "Name"),
            get_bytes(m, "Addr"),
            get_uint(m, "Port", 16),
            get_bytes(m, "Meta"),
            get_uint(m, "Incarnation", 32),
            get_uint(m, "State", 8),
            get_bytes(m, "Vsn"),
        )


@dataclass(slots=True)
class PushPull:
    """A full state exchange: node list plus the delegate's (Serf's) opaque user state."""

    join: bool
    nodes: list[PushNodeState] = field(default_factory=list)
    user_state: bytes = b""


def encode_compress(algo: int, buf: bytes) -> bytes:
    return bytes([MsgType.COMPRESS]) + _body({"Algo": algo, "Buf": buf})


def decode_compress(body: bytes) -> tuple[int, bytes]:
    m = _map(body, "compress")
    return codec.get_int(m, "Algo"), get_bytes(m, "Buf")


def encode_user_header(length: int) -> bytes:
    return _body({"UserMsgLen": length})


Message = Ping | IndirectPing | Ack | Nack | ErrResp | Suspect | Alive | Dead

_DECODERS: dict[int, Any] = {
    MsgType.PING: Ping.decode,
    MsgType.INDIRECT_PING: IndirectPing.decode,
    MsgType.ACK: Ack.decode,
    MsgType.NACK: Nack.decode,
    MsgType.ERR: ErrResp.decode,
    MsgType.SUSPECT: Suspect.decode,
    MsgType.ALIVE: Alive.decode,
    MsgType.DEAD: Dead.decode,
}


def decode_message(msg: bytes) -> Message | tuple[int, bytes]:
    """Decode one plain message. USER messages come back as ``(MsgType.USER, payload)``."""
    if not msg:
        raise DecodeError("empty message")
    t = msg[0]
    if t == MsgType.USER:
        return (MsgType.USER, msg[1:])
    dec = _DECODERS.get(t)
    if dec is None:
        raise DecodeError(f"unexpected message type {t}")
    return dec(msg[1:])
