"""Serf's messages, carried inside memberlist user messages as ``[type][msgpack body]``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from consulpy.gossip import codec
from consulpy.gossip.codec import (
    DecodeError,
    as_map,
    get_bool,
    get_bytes,
    get_int,
    get_str,
    get_uint,
    text,
)

USER_EVENT_BUFFER = 512  # slots of the event ring sent in push-pull (fixed by the protocol)


class SerfMsg(enum.IntEnum):
    LEAVE = 0
    JOIN = 1
    PUSH_PULL = 2
    USER_EVENT = 3
    QUERY = 4
    QUERY_RESPONSE = 5
    CONFLICT_RESPONSE = 6
    KEY_REQUEST = 7
    KEY_RESPONSE = 8
    RELAY = 9


QUERY_FLAG_ACK = 1
QUERY_FLAG_NO_BROADCAST = 2

FILTER_NODE = 0
FILTER_TAG = 1


def _enc(t: SerfMsg, fields: dict[str, Any]) -> bytes:
    return bytes([t]) + codec.pack({k.encode(): v for k, v in sorted(fields.items())})


def _map(body: bytes, what: str) -> dict[bytes, Any]:
    return as_map(codec.unpack(body), what)


@dataclass(slots=True)
class Leave:
    ltime: int
    node: str
    prune: bool = False

    def encode(self) -> bytes:
        return _enc(
            SerfMsg.LEAVE, {"LTime": self.ltime, "Node": text(self.node), "Prune": self.prune}
        )

    @classmethod
    def decode(cls, body: bytes) -> Leave:
        m = _map(body, "leave")
        return cls(get_uint(m, "LTime", 64), get_str(m, "Node"), get_bool(m, "Prune"))


@dataclass(slots=True)
class Join:
    ltime: int
    node: str

    def encode(self) -> bytes:
        return _enc(SerfMsg.JOIN, {"LTime": self.ltime, "Node": text(self.node)})

    @classmethod
    def decode(cls, body: bytes) -> Join:
        m = _map(body, "join")
        return cls(get_uint(m, "LTime", 64), get_str(m, "Node"))


@dataclass(slots=True)
class UserEventMsg:
    ltime: int
    name: str
    payload: bytes
    cc: bool = False

    def encode(self) -> bytes:
        return _enc(
            SerfMsg.USER_EVENT,
            {
                "LTime": self.ltime,
                "Name": text(self.name),
                "Payload": self.payload or None,
                "CC": self.cc,
            },
        )

    @classmethod
    def decode(cls, body: bytes) -> UserEventMsg:
        m = _map(body, "userEvent")
        return cls(
            get_uint(m, "LTime", 64), get_str(m, "Name"), get_bytes(m, "Payload"), get_bool(m, "CC")
        )


@dataclass(slots=True)
class EventSlot:
    """One slot of the user-event ring: every distinct event seen at one Lamport time."""

    ltime: int
    events: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SerfPushPull:
    ltime: int
    status_ltimes: dict[str, int]
    left_members: list[str]
    event_ltime: int
    events: list[EventSlot | None]
    query_ltime: int

    def encode(self) -> bytes:
        evs: list[Any] = []
        for slot in self.events:
            if slot is None:
                evs.append(None)
            else:
                evs.append(
                    {
                        b"LTime": slot.ltime,
                        b"Events": [{b"Name": text(n), b"Payload": p} for n, p in slot.events],
                    }
                )
        return _enc(
            SerfMsg.PUSH_PULL,
            {
                "LTime": self.ltime,
                "StatusLTimes": {text(k): v for k, v in self.status_ltimes.items()},
                "LeftMembers": [text(x) for x in self.left_members],
                "EventLTime": self.event_ltime,
                "Events": evs,
                "QueryLTime": self.query_ltime,
            },
        )

    @classmethod
    def decode(cls, body: bytes) -> SerfPushPull:
        m = _map(body, "pushPull")
        st = m.get(b"StatusLTimes") or {}
        if not isinstance(st, dict):
            raise DecodeError("pushPull: StatusLTimes must be a map")
        status: dict[str, int] = {}
        for k, v in st.items():
            if not isinstance(k, bytes) or not isinstance(v, int) or v < 0:
                raise DecodeError("pushPull: bad StatusLTimes entry")
            status[k.decode("utf-8", "surrogateescape")] = v
        left_raw = m.get(b"LeftMembers") or []
        if not isinstance(left_raw, list) or not all(isinstance(x, bytes) for x in left_raw):
            raise DecodeError("pushPull: bad LeftMembers")
        events: list[EventSlot | None] = []
        raw_events = m.get(b"Events") or []
        if not isinstance(raw_events, list):
            raise DecodeError("pushPull: bad Events")
        for slot in raw_events:
            if slot is None:
                events.append(None)
                continue
            sm = as_map(slot, "userEvents")
            items = sm.get(b"Events") or []
            if not isinstance(items, list):
                raise DecodeError("pushPull: bad event slot")
            evs = []
            for it in items:
                im = as_map(it, "userEvent")
                evs.append((get_str(im, "Name"), get_bytes(im, "Payload")))
            events.append(EventSlot(get_uint(sm, "LTime", 64), evs))
        return cls(
            get_uint(m, "LTime", 64),
            status,
            [x.decode("utf-8", "surrogateescape") for x in left_raw],
            get_uint(m, "EventLTime", 64),
            events,
            get_uint(m, "QueryLTime", 64),
        )


@dataclass(slots=True)
class QueryMsg:
    ltime: int
    id: int
    addr: bytes
    port: int
    source_node: str
    filters: list[bytes]
    flags: int
    relay_factor: int
    timeout_ns: int
    name: str
    payload: bytes

    def encode(self) -> bytes:
        return _enc(
            SerfMsg.QUERY,
            {
                "LTime": self.ltime,
                "ID": self.id,
                "Addr": self.addr,
                "Port": self.port,
                "SourceNode": text(self.source_node),
                "Filters": list(self.filters) if self.filters else None,
                "Flags": self.flags,
                "RelayFactor": self.relay_factor,
                "Timeout": self.timeout_ns,
                "Name": text(self.name),
                "Payload": self.payload or None,
            },
        )

    @classmethod
    def decode(cls, body: bytes) -> QueryMsg:
        m = _map(body, "query")
        filters = m.get(b"Filters") or []
        if not isinstance(filters, list) or not all(isinstance(f, bytes) for f in filters):
            raise DecodeError("query: bad Filters")
        return cls(
            get_uint(m, "LTime", 64),
            get_uint(m, "ID", 32),
            get_bytes(m, "Addr"),
            get_uint(m, "Port", 16),
            get_str(m, "SourceNode"),
            list(filters),
            get_uint(m, "Flags", 32),
            get_uint(m, "RelayFactor", 8),
            get_int(m, "Timeout"),
            get_str(m, "Name"),
            get_bytes(m, "Payload"),
        )

    @property
    def ack(self) -> bool:
        return bool(self.flags & QUERY_FLAG_ACK)

    @property
    def no_broadcast(self) -> bool:
        return bool(self.flags & QUERY_FLAG_NO_BROADCAST)


@dataclass(slots=True)
class QueryResponseMsg:
    ltime: int
    id: int
    from_: str
    flags: int
    payload: bytes | None

    def encode(self) -> bytes:
        return _enc(
            SerfMsg.QUERY_RESPONSE,
            {
                "LTime": self.ltime,
                "ID": self.id,
                "From": text(self.from_),
                "Flags": self.flags,
                "Payload": self.payload or None,
            },
        )

    @classmethod
    def decode(cls, body: bytes) -> QueryResponseMsg:
        m = _map(body, "queryResponse")
        return cls(
            get_uint(m, "LTime", 64),
            get_uint(m, "ID", 32),
            get_str(m, "From"),
            get_uint(m, "Flags", 32),
            get_bytes(m, "Payload"),
        )

    @property
    def ack(self) -> bool:
        return bool(self.flags & QUERY_FLAG_ACK)


def encode_relay(dest_addr: bytes, dest_port: int, dest_name: str, inner: bytes) -> bytes:
    """``[9][relayHeader][inner message]``: ask a peer to forward a query response."""
    hdr = codec.pack(
        {
            b"DestAddr": {b"IP": dest_addr, b"Port": dest_port, b"Zone": b""},
            b"DestName": text(dest_name),
        }
    )
    return bytes([SerfMsg.RELAY]) + hdr + inner


def decode_relay(body: bytes) -> tuple[bytes, int, str, bytes]:
    obj, used = codec.unpack_prefix(body)
    m = as_map(obj, "relayHeader")
    dest = as_map(m.get(b"DestAddr") or {}, "relayHeader.DestAddr")
    return (
        get_bytes(dest, "IP"),
        get_uint(dest, "Port", 16),
        get_str(m, "DestName"),
        bytes(body[used:]),
    )


def encode_key_request(key: bytes) -> bytes:
    return _enc(SerfMsg.KEY_REQUEST, {"Key": key})


def decode_key_request(payload: bytes) -> bytes:
    if not payload or payload[0] != SerfMsg.KEY_REQUEST:
        raise DecodeError("not a key request")
    return get_bytes(_map(payload[1:], "keyRequest"), "Key")


@dataclass(slots=True)
class KeyResponse:
    result: bool
    message: str = ""
    keys: list[str] = field(default_factory=list)
    primary_key: str = ""

    def encode(self) -> bytes:
        return _enc(
            SerfMsg.KEY_RESPONSE,
            {
                "Result": self.result,
                "Message": text(self.message),
                "Keys": [k.encode() for k in self.keys] if self.keys else None,
                "PrimaryKey": self.primary_key.encode(),
            },
        )

    @classmethod
    def decode(cls, payload: bytes) -> KeyResponse:
        if not payload or payload[0] != SerfMsg.KEY_RESPONSE:
            raise DecodeError("not a key response")
        m = _map(payload[1:], "keyResponse")
        keys = m.get(b"Keys") or []
        if not isinstance(keys, list):
            raise DecodeError("keyResponse: bad Keys")
        return cls(
            get_bool(m, "Result"),
            get_str(m, "Message"),
            [k.decode() for k in keys if isinstance(k, bytes)],
            get_str(m, "PrimaryKey"),
        )


def encode_member(
    name: str, addr: bytes, port: int, tags: dict[str, str], status: int, vsn: bytes
) -> bytes:
    """A conflict-query answer: Serf's Member struct."""
    v = list(vsn) + [0] * (6 - len(vsn))
    return _enc(
        SerfMsg.CONFLICT_RESPONSE,
        {
            "Name": text(name),
            "Addr": addr,
            "Port": port,
            "Tags": {text(k): text(x) for k, x in tags.items()},
            "Status": status,
            "ProtocolMin": v[0],
            "ProtocolMax": v[1],
            "ProtocolCur": v[2],
            "DelegateMin": v[3],
            "DelegateMax": v[4],
            "DelegateCur": v[5],
        },
    )


def decode_member(payload: bytes) -> tuple[str, bytes, int] | None:
    """Name, address and port from a conflict answer (None when the peer knew nothing)."""
    if not payload or payload[0] != SerfMsg.CONFLICT_RESPONSE:
        raise DecodeError("not a conflict response")
    obj = codec.unpack(payload[1:])
    if obj is None:
        return None
    m = as_map(obj, "member")
    return get_str(m, "Name"), get_bytes(m, "Addr"), get_uint(m, "Port", 16)


def encode_tags(tags: dict[str, str]) -> bytes:
    """memberlist Meta for Serf protocol >= 3: 0xFF then a msgpack map."""
    return b"\xff" + codec.pack({text(k): text(v) for k, v in sorted(tags.items())})


def decode_tags(meta: bytes) -> dict[str, str]:
    if not meta:
        return {}
    if meta[0] != 0xFF:
        # Protocol < 3 carried a bare role string.
        return {"role": meta.decode("utf-8", "surrogateescape")}
    return codec.str_map(codec.unpack(meta[1:]), "tags")


def encode_filters(nodes: list[str] | None, tags: dict[str, str] | None) -> list[bytes]:
    out: list[bytes] = []
    if nodes:
        out.append(bytes([FILTER_NODE]) + codec.pack([text(n) for n in nodes]))
    for tag, expr in (tags or {}).items():
        out.append(bytes([FILTER_TAG]) + codec.pack({b"Tag": text(tag), b"Expr": text(expr)}))
    return out
