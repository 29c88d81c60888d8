"""Serf's agent RPC protocol (msgpack over TCP): a client, and a server for our agent.

Why here: the interop tests and the benchmark drive real ``serf agent`` processes and our
own agent processes the same way, over the same protocol, and ``serf members -rpc-addr=...``
works against our agent too. The protocol: a header ``{Command, Seq}`` then an optional body;
answers are ``{Seq, Error}`` then an optional body; streams repeat header + record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import msgpack

from consulpy.gossip.events import Member, MemberEvent, Query, UserEvent
from consulpy.gossip.transport import write as stream_write

# Commands whose request has a body (the others send the header alone).
WITH_BODY = {
    "handshake",
    "members-filtered",
    "join",
    "event",
    "force-leave",
    "stream",
    "stop",
    "install-key",
    "use-key",
    "remove-key",
    "query",
    "respond",
    "monitor",
    "tags",
    "auth",
    "get-coordinate",
}
# Commands whose answer has a body.
_REPLY_BODY = {
    "members",
    "members-filtered",
    "join",
    "install-key",
    "use-key",
    "remove-key",
    "list-keys",
    "stats",
    "get-coordinate",
}


class RPCError(Exception):
    """The agent answered with an error."""


def _packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True)


class _Stream:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=16 * 1024 * 1024
        )

    async def next(self) -> Any:
        while True:
            try:
                return self.unpacker.unpack()
            except msgpack.OutOfData:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("agent closed the RPC connection") from None
                self.unpacker.feed(data)


class RPCClient:
    """A client of a serf agent's RPC port (or of ``consulpy.gossip.agent_main``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._seq = itertools.count()
        self._reader: _Stream | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Queue[tuple[dict[str, Any], Any]]] = {}
        self._reply_body: dict[int, bool] = {}
        self._streams: dict[int, bool] = {}  # stream seq -> acknowledged yet
        self._task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 5.0) -> RPCClient:
        r, w = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
        self._reader, self._writer = _Stream(r), w
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        await self.call("handshake", {"Version": 1})
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                hdr = await self._reader.next()
                seq = hdr.get("Seq")
                body = None
                if seq in self._streams:
                    # The first answer acknowledges the subscription; records follow.
                    if self._streams[seq] and not hdr.get("Error"):
                        body = await self._reader.next()
                    self._streams[seq] = True
                elif not hdr.get("Error") and self._reply_body.get(seq, False):
                    body = await self._reader.next()
                q = self._pending.get(seq)
                if q is not None:
                    q.put_nowait((hdr, body))
        except (ConnectionError, asyncio.CancelledError):
            for q in self._pending.values():
                q.put_nowait(({"Error": "connection closed"}, None))

    def _send(self, command: str, body: Any, expect_body: bool) -> int:
        assert self._writer is not None
        seq = next(self._seq)
        self._pending[seq] = asyncio.Queue()
        self._reply_body[seq] = expect_body
        p = _packer()
        data = p.pack({"Command": command, "Seq": seq})
        if command in WITH_BODY:
            data += p.pack(body if body is not None else {})
        stream_write(self._writer, data)
        return seq

    async def call(self, command: str, body: Any = None, timeout: float = 30.0) -> Any:
        seq = self._send(command, body, command in _REPLY_BODY)
        try:
            hdr, reply = await asyncio.wait_for(self._pending[seq].get(), timeout)
        finally:
            self._pending.pop(seq, None)
            self._reply_body.pop(seq, None)
        if hdr.get("Error"):
            raise RPCError(hdr["Error"])
        return reply

    async def members(self) -> list[dict[str, Any]]:
        return (await self.call("members"))["Members"]

    async def stream(
        self, types: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Records of a ``stream`` subscription (e.g. "member-join,user"); ``ready`` is set
        once the agent has acknowledged it, so events fired after that are delivered."""
        seq = self._send("stream", {"Type": types}, expect_body=False)
        self._streams[seq] = False
        q = self._pending[seq]
        hdr, _ = await q.get()  # the acknowledgement carries no record
        if hdr.get("Error"):
            raise RPCError(hdr["Error"])
        if ready is not None:
            ready.set()
        try:
            while True:
                hdr, rec = await q.get()
                if hdr.get("Error"):
                    raise RPCError(hdr["Error"])
                yield rec
        finally:
            self._pending.pop(seq, None)
            self._streams.pop(seq, None)


# ---------------------------------------------------------------- server side


def member_record(m: Member) -> dict[str, Any]:
    import ipaddress

    return {
        "Name": m.name,
        "Addr": ipaddress.ip_address(m.addr).packed,
        "Port": m.port,
        "Tags": dict(m.tags),
        "Status": m.status.label(),
        "ProtocolMin": m.protocol_min,
        "ProtocolMax": m.protocol_max,
        "ProtocolCur": m.protocol_cur,
        "DelegateMin": m.delegate_min,
        "DelegateMax": m.delegate_max,
        "DelegateCur": m.delegate_cur,
    }


def event_record(ev: MemberEvent | UserEvent | Query) -> tuple[str, dict[str, Any]]:
    if isinstance(ev, MemberEvent):
        return ev.type.value, {
            "Event": ev.type.value,
            "Members": [member_record(m) for m in ev.members],
        }
    if isinstance(ev, UserEvent):
        return "user", {
            "Event": "user",
            "LTime": ev.ltime,
            "Name": ev.name,
            "Payload": ev.payload,
            "Coalesce": ev.coalesce,
        }
    return "query", {
        "Event": "query",
        "ID": ev.id,
        "LTime": ev.ltime,
        "Name": ev.name,
        "Payload": ev.payload,
    }


def stream_filter(spec: str) -> set[str]:
    """Serf's event filter: "*", "member-join", "user", "user:NAME", "query"..."""
    out = set()
    for part in spec.split(","):
        part = part.strip()
        if part in ("*", ""):
            out |= {
                "member-join",
                "member-leave",
                "member-failed",
                "member-update",
                "member-reap",
                "user",
                "query",
            }
        else:
            out.add(part.split(":", 1)[0])
    return out
