"""What Serf tells its user: members, member events, user events, queries."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class MemberStatus(enum.IntEnum):
    """Serf's MemberStatus numbering, which Consul's /v1/agent/members renders as-is."""

    NONE = 0
    ALIVE = 1
    LEAVING = 2
    LEFT = 3
    FAILED = 4

    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    addr: str
    port: int
    tags: dict[str, str]
    status: MemberStatus
    protocol_min: int
    protocol_max: int
    protocol_cur: int
    delegate_min: int
    delegate_max: int
    delegate_cur: int


class MemberEventType(enum.Enum):
    JOIN = "member-join"
    LEAVE = "member-leave"
    FAILED = "member-failed"
    UPDATE = "member-update"
    REAP = "member-reap"


@dataclass(frozen=True, slots=True)
class MemberEvent:
    type: MemberEventType
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class UserEvent:
    name: str
    payload: bytes
    ltime: int
    coalesce: bool


@dataclass(slots=True)
class Query:
    """A query delivered to this node; ``respond`` sends one answer back to the asker."""

    name: str
    payload: bytes
    ltime: int
    id: int
    source_node: str
    deadline: float
    _respond: Callable[[bytes], None] = field(repr=False, default=lambda _b: None)

    def respond(self, payload: bytes) -> None:
        self._respond(payload)


Event = MemberEvent | UserEvent | Query
