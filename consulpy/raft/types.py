"""Value types shared by the Raft core, storage, transport and driver.

Everything here is plain data: immutable where it crosses a boundary (entries, configurations,
snapshot metadata) so the core can hand the same object to storage and to the network without
copying.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

import msgpack


class EntryKind(enum.IntEnum):
    """What a log entry carries; only NORMAL entries reach the application's apply()."""

    NORMAL = 0
    NOOP = 1  # appended by every new leader so it can commit entries of earlier terms
    CONFIG = 2  # a full cluster configuration, effective as soon as it is appended


class Suffrage(enum.IntEnum):
    VOTER = 0
    NONVOTER = 1

    @property
    def label(self) -> str:
        return "voter" if self is Suffrage.VOTER else "nonvoter"


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""

    def size(self) -> int:
        return len(self.data) + 16


@dataclass(frozen=True, slots=True)
class Server:
    id: str
    address: str
    suffrage: Suffrage = Suffrage.VOTER

    @property
    def is_voter(self) -> bool:
        return self.suffrage is Suffrage.VOTER


@dataclass(frozen=True, slots=True)
class Configuration:
    """The set of servers; a configuration entry always carries the whole set, never a diff."""

    servers: tuple[Server, ...] = ()

    def get(self, server_id: str) -> Server | None:
        for s in self.servers:
            if s.id == server_id:
                return s
        return None

    def voters(self) -> list[str]:
        return [s.id for s in self.servers if s.is_voter]

    def ids(self) -> list[str]:
        return [s.id for s in self.servers]

    def is_voter(self, server_id: str) -> bool:
        s = self.get(server_id)
        return s is not None and s.is_voter

    def encode(self) -> bytes:
        return msgpack.packb([[s.id, s.address, int(s.suffrage)] for s in self.servers])

    @staticmethod
    def decode(data: bytes) -> Configuration:
        raw = msgpack.unpackb(data)
        return Configuration(tuple(Server(str(i), str(a), Suffrage(int(k))) for i, a, k in raw))

    def with_server(self, server: Server) -> Configuration:
        out = [s for s in self.servers if s.id != server.id]
        out.append(server)
        return Configuration(tuple(out))

    def without(self, server_id: str) -> Configuration:
        return Configuration(tuple(s for s in self.servers if s.id != server_id))

    def to_list(self) -> list[dict[str, str]]:
        return [
            {"id": s.id, "address": s.address, "suffrage": s.suffrage.label} for s in self.servers
        ]


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before a node answers anyone: its term, its vote, and commit."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    configuration: Configuration = field(default_factory=Configuration)
    configuration_index: int = 0

    def encode(self) -> list:
        return [self.index, self.term, self.configuration.encode(), self.configuration_index]

    @staticmethod
    def decode(raw: list) -> SnapshotMeta:
        index, term, conf, conf_index = raw
        return SnapshotMeta(int(index), int(term), Configuration.decode(conf), int(conf_index))


class SnapshotData(Protocol):
    """What the core needs of a snapshot's data to send it in chunks: bytes, or the data of a
    saved snapshot read from its file on demand (snapshot_store.SnapshotFile)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: slice, /) -> bytes: ...
    def __bytes__(self) -> bytes: ...


class SnapshotBuffer(SnapshotData, Protocol):
    """Where a follower places the chunks of an incoming snapshot (a bytearray, or a
    file-backed snapshot_store.SpoolBuffer), then hands it on as the snapshot's data."""

    def __setitem__(self, key: slice, value: bytes, /) -> None: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes | SnapshotData


class MsgType(enum.IntEnum):
    VOTE = 1
    VOTE_RESP = 2
    PRE_VOTE = 3
    PRE_VOTE_RESP = 4
    APPEND = 5
    APPEND_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAPSHOT = 9
    SNAPSHOT_RESP = 10
    TIMEOUT_NOW = 11
    READ_INDEX = 12
    READ_INDEX_RESP = 13


@dataclass(slots=True)
class Message:
    """One Raft message. A single shape for every type keeps the codec trivial.

    Field use by type:
      VOTE/PRE_VOTE: index/log_term = candidate's last log position; transfer = leadership transfer.
      *_RESP: reject; APPEND_RESP: index = last verified index or rejected prev index,
        hint_index/hint_term = conflict hint.
      APPEND: index/log_term = previous entry, entries, commit; done = a commit notice (no
        entries; answered only when refused; servers before it ignore the flag and answer).
      HEARTBEAT: commit. Leader messages carry ctx (read sequence), echoed by responses.
      SNAPSHOT: index/log_term = snapshot position, snap_meta, offset, data, total, done.
      READ_INDEX(_RESP): ctx = requester's id for the read, index = read index.
    """

    type: MsgType
    src: str
    dst: str
    term: int
    index: int = 0
    log_term: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    hint_index: int = 0
    hint_term: int = 0
    ctx: int = 0
    transfer: bool = False
    snap_meta: SnapshotMeta | None = None
    offset: int = 0
    data: bytes = b""
    total: int = 0
    done: bool = False

    @property
    def notice(self) -> bool:
        """An AppendEntries that only tells the commit index: accepted, it gets no answer."""
        return self.done and self.type is MsgType.APPEND


def encode_message(m: Message) -> list:
    """Plain msgpack-able list; the field order is the wire format (see docs/raft.md)."""
    return [
        int(m.type),
        m.src,
        m.dst,
        m.term,
        m.index,
        m.log_term,
        [[e.term, e.index, int(e.kind), e.data] for e in m.entries],
        m.commit,
        m.reject,
        m.hint_index,
        m.hint_term,
        m.ctx,
        m.transfer,
        m.snap_meta.encode() if m.snap_meta is not None else None,
        m.offset,
        m.data,
        m.total,
        m.done,
    ]


def decode_message(raw: list) -> Message:
    """Inverse of encode_message; raises ValueError/TypeError on malformed input."""
    if not isinstance(raw, list) or len(raw) != 18:
        raise ValueError("malformed raft message")
    entries = [Entry(int(t), int(i), EntryKind(int(k)), bytes(d)) for t, i, k, d in raw[6]]
    return Message(
        type=MsgType(int(raw[0])),
        src=str(raw[1]),
        dst=str(raw[2]),
        term=int(raw[3]),
        index=int(raw[4]),
        log_term=int(raw[5]),
        entries=entries,
        commit=int(raw[7]),
        reject=bool(raw[8]),
        hint_index=int(raw[9]),
        hint_term=int(raw[10]),
        ctx=int(raw[11]),
        transfer=bool(raw[12]),
        snap_meta=SnapshotMeta.decode(raw[13]) if raw[13] is not None else None,
        offset=int(raw[14]),
        data=bytes(raw[15]),
        total=int(raw[16]),
        done=bool(raw[17]),
    )
