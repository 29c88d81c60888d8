"""The asyncio Serf: the public face of consulpy's gossip library.

``Serf`` runs the sans-I/O ``SerfCore`` (and its SWIM core) over the UDP/TCP transport. By
default all gossip I/O and protocol work run on a dedicated thread with its own event loop, so
acks leave within memberlist's 500 ms probe timeout even when the application's loop is busy
(see docs/gossip.md for the measurement). Public methods are coroutines on the caller's loop;
events are delivered to the caller's loop too.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import ipaddress
import logging
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from consulpy.gossip import wire
from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.coordinate import Coordinate
from consulpy.gossip.events import (
    Event,
    Member,
    MemberEvent,
    MemberEventType,
    Query,
    UserEvent,
)
from consulpy.gossip.keyring import Keyring, KeyringError, decode_key
from consulpy.gossip.messages import MsgType
from consulpy.gossip.serf_core import (
    INTERNAL_QUERY_PREFIX,
    QueryResult,
    SerfCore,
    SerfError,
    SerfTimings,
)
from consulpy.gossip.serf_messages import KeyResponse, encode_filters, encode_key_request
from consulpy.gossip.swim import (
    Recorder,
    SendPacket,
    StartPushPull,
    StartTcpPing,
    VersionMismatch,
)
from consulpy.gossip.transport import (
    ConnectionRefused,
    StreamError,
    Transport,
    exchange,
    read_message,
)
from consulpy.gossip.transport import write as stream_write

log = logging.getLogger("consulpy.gossip")
T = TypeVar("T")

# Serf's flap window: a member failed and alive again within it counts as a flap.
FLAP_TIMEOUT = 60.0
_LAN = (("network", "lan"),)
_EVENT_METRIC = {
    MemberEventType.JOIN: "serf.member.join",
    MemberEventType.LEAVE: "serf.member.left",
    MemberEventType.FAILED: "serf.member.failed",
    MemberEventType.UPDATE: "serf.member.update",
}

__all__ = [
    "Event",
    "JoinError",
    "KeyManager",
    "Member",
    "MemberEvent",
    "Query",
    "QueryResponse",
    "Serf",
    "SerfConfig",
    "SerfError",
    "SerfTimings",
    "UserEvent",
]


class JoinError(Exception):
    """No address given to ``join`` could be reached."""


@dataclass
class SerfConfig:
    node_name: str
    bind_addr: str = "0.0.0.0"
    bind_port: int = 8301
    advertise_addr: str | None = None
    advertise_port: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Encryption: a base64 key (``-encrypt``), and/or a keyring file (serf/local.keyring).
    # A keyring file, when present, wins over encrypt_key, as in Consul.
    encrypt_key: str | None = None
    keyring_file: str | None = None
    label: str = ""
    gossip_verify_incoming: bool = True
    gossip_verify_outgoing: bool = True
    memberlist: MemberlistConfig = field(default_factory=MemberlistConfig.lan)
    timings: SerfTimings = field(default_factory=SerfTimings)
    # A failed member's own reconnect timeout from its tags (see SerfCore.reconnect_override).
    reconnect_override: Callable[[Member, float], float] | None = None
    # Run gossip on its own thread and event loop (recommended; see docs/gossip.md).
    own_thread: bool = True
    rng_seed: int | None = None
    # Serf's DisableCoordinates: no coordinate in our acks, none learnt from others'.
    disable_coordinates: bool = False

    def build_keyring(self) -> Keyring | None:
        """The keyring file if it exists (it survives rotations), else ``encrypt_key``."""
        from pathlib import Path

        if self.keyring_file and Path(self.keyring_file).exists():
            return Keyring.load(self.keyring_file)
        if not self.encrypt_key:
            return None
        ring = Keyring([decode_key(self.encrypt_key)], path=self.keyring_file)
        if self.keyring_file:
            ring.save()
        return ring


@dataclass(frozen=True, slots=True)
class QueryResponse:
    acks: tuple[str, ...]
    responses: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class KeyringReport:
    """Cluster-wide outcome of a keyring query (what Consul's keyring API reports)."""

    num_nodes: int
    num_resp: int
    num_err: int
    messages: dict[str, str]
    keys: dict[str, int]
    primary_keys: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.num_err == 0 and self.num_resp == self.num_nodes


def _default_advertise(bind: str) -> str:
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # No packet is sent: connect() on UDP only picks the outbound interface.
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]
    return "127.0.0.1"


class _Runner:
    """Where gossip code runs: a private thread+loop, or the caller's loop."""

    def __init__(self, own_thread: bool, name: str) -> None:
        self.own_thread = own_thread
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        if not self.own_thread:
            self.loop = asyncio.get_running_loop()
            return
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"gossip-{self._name}", daemon=True)
        self._thread.start()
        ready.wait()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if (
            self.loop is None
            or self.loop.is_closed()
            or (self.own_thread and not self.loop.is_running())
        ):
            coro.close()
            raise SerfError("Serf is not running (not started, or shut down)")
        if not self.own_thread:
            return await coro
        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(fut)

    def stop(self) -> None:
        if self.own_thread and self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()


class Serf:
    """A gossip member speaking Serf's protocol. See the module docstring."""

    def __init__(
        self, config: SerfConfig, metric_labels: tuple[tuple[str, str], ...] = _LAN
    ) -> None:
        self.config = config
        # The labels of every metric this member records: the pool it gossips in, as
        # Consul labels its LAN and WAN pools (network="lan" / "wan").
        self.metric_labels = metric_labels
        self.keyring = config.build_keyring()
        self.key_manager = KeyManager(self)
        self._runner = _Runner(config.own_thread, config.node_name)
        self._lock = threading.RLock()  # guards the cores against readers on other threads
        self._core: SerfCore | None = None
        self._transport: Transport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._subscribers: list[_Subscriber] = []
        self._callbacks: list[tuple[asyncio.AbstractEventLoop, Callable[[Event], Any]]] = []
        self._sec = wire.Security(
            keyring=self.keyring,
            label=config.label.encode(),
            verify_incoming=config.gossip_verify_incoming,
            verify_outgoing=config.gossip_verify_outgoing,
            compression=config.memberlist.enable_compression,
        )
        self._push_pulls = 0
        self._shutdown = False
        self._conflict_stop = False  # we gave up our name; shutdown() still cleans up
        self.bound_port = 0
        # Where metrics go (memberlist/serf names, labelled `metric_labels`); the application
        # sets        # it (see the `metrics` property).
        self._metrics: Recorder | None = None
        self._failed_at: dict[str, float] = {}

    # ------------------------------------------------------------ lifecycle

    @property
    def metrics(self) -> Recorder | None:
        """Where this member records its metrics (anything with incr and sample); None
        records nothing. Settable before or after start."""
        return self._metrics

    @metrics.setter
    def metrics(self, recorder: Recorder | None) -> None:
        self._metrics = recorder
        with self._lock:
            if self._core is not None:
                self._core.use_metrics(recorder, self.metric_labels)

    @property
    def core(self) -> SerfCore:
        if self._core is None:
            raise SerfError("Serf is not started")
        return self._core

    async def start(self) -> None:
        """Bind the gossip port and start gossiping (alone until ``join``)."""
        self._runner.start()
        await self._runner.call(self._start())

    async def _start(self) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        self._transport = Transport(c.bind_addr, c.bind_port, self._on_packet, self._on_stream)
        self.bound_port = await self._transport.start()
        adv_addr = c.advertise_addr or _default_advertise(c.bind_addr)
        adv_port = c.advertise_port or self.bound_port
        ipaddress.ip_address(adv_addr)  # must be an IP literal: it goes on the wire
        rng = random.Random(c.rng_seed)
        with self._lock:
            self._core = SerfCore(
                c.node_name,
                adv_addr,
                adv_port,
                c.tags,
                c.memberlist,
                c.timings,
                self.keyring,
                rng,
                loop.time(),
                coordinates=not c.disable_coordinates,
            )
            self._core.reconnect_override = c.reconnect_override
            self._core.use_metrics(self._metrics, self.metric_labels)
            self._core.ml.packet_overhead = (
                self._sec.label_overhead() + self._sec.encrypt_overhead()
            )
            self._core.start(loop.time())
        self._touch()

    async def shutdown(self) -> None:
        """Stop at once, without telling anyone (peers will see us fail)."""
        if self._shutdown:
            return
        self._shutdown = True
        with contextlib.suppress(RuntimeError, SerfError):
            await self._runner.call(self._stop())
        self._runner.stop()
        for s in self._subscribers:
            with contextlib.suppress(RuntimeError):
                s.loop.call_soon_threadsafe(s.queue.put_nowait, None)

    async def _stop(self) -> None:
        with self._lock:
            if self._core is not None:
                self._core.ml.stop()
                self._core.state = "shutdown"
        if self._timer is not None:
            self._timer.cancel()
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._transport is not None:
            await self._transport.close()

    async def join(self, addresses: list[str], ignore_old: bool = False) -> int:
        """Push-pull with each address; return how many answered. Raise if none did."""
        return await self._runner.call(self._join(addresses, ignore_old))

    async def _join(self, addresses: list[str], ignore_old: bool) -> int:
        errors = []
        ok = 0
        core = self.core
        if ignore_old:
            core.join_ignore = True
        try:
            for a in addresses:
                try:
                    for addr in await self._resolve(a):
                        await self._push_pull(addr, join=True)
                        ok += 1
                        break
                except (StreamError, VersionMismatch, OSError, ValueError) as exc:
                    errors.append(f"Failed to join {a}: {exc}")
        finally:
            core.join_ignore = False
        if ok == 0:
            raise JoinError("; ".join(errors) or "no addresses to join")
        with self._lock:
            core.after_join()
        self._touch()
        return ok

    async def _resolve(self, a: str) -> list[tuple[str, int]]:
        host, port = a, self.config.bind_port
        if a.startswith("["):
            host, _, rest = a[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif a.count(":") == 1:
            host, p = a.split(":")
            port = int(p)
        try:
            ipaddress.ip_address(host)
            return [(host, port)]
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            return [(i[4][0], port) for i in infos]

    async def leave(self) -> None:
        """Leave gracefully: leave intent, dead-about-self, then a propagation delay."""
        await self._runner.call(self._leave())

    async def _leave(self) -> None:
        loop = asyncio.get_running_loop()
        t = self.config.timings
        intent_sent = loop.create_future()
        with self._lock:
            self.core.begin_leave(lambda: intent_sent.done() or intent_sent.set_result(None))
        self._touch()
        try:
            await asyncio.wait_for(intent_sent, t.broadcast_timeout)
        except TimeoutError:
            log.warning("timed out broadcasting leave intent")
        dead_sent = loop.create_future()
        with self._lock:
            anyone = self.core.ml.leave(lambda: dead_sent.done() or dead_sent.set_result(None))
        self._touch()
        if anyone:
            try:
                await asyncio.wait_for(dead_sent, t.broadcast_timeout)
            except TimeoutError:
                log.warning("timed out broadcasting our departure")
            await asyncio.sleep(t.leave_propagate_delay)
        with self._lock:
            self.core.state = "left"

    # ------------------------------------------------------------ operations

    def members(self) -> list[Member]:
        with self._lock:
            return self.core.member_list()

    def local_member(self) -> Member:
        with self._lock:
            return self.core.local_member()

    def coordinate(self) -> Coordinate | None:
        """Our Vivaldi coordinate; None when coordinates are disabled."""
        with self._lock:
            return self.core.coordinate()

    def cached_coordinate(self, name: str) -> Coordinate | None:
        """The last coordinate ``name`` sent us (ours for our own name), if any."""
        with self._lock:
            return self.core.cached_coordinate(name)

    def stats(self) -> dict[str, str]:
        with self._lock:
            return self.core.stats()

    @property
    def state(self) -> str:
        if self._shutdown or self._conflict_stop:
            return "shutdown"
        return self._core.state if self._core else "init"

    async def set_tags(self, tags: dict[str, str]) -> None:
        await self._runner.call(self._set_tags(tags))

    async def _set_tags(self, tags: dict[str, str]) -> None:
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            anyone = self.core.set_tags(tags, lambda: fut.done() or fut.set_result(None))
        self._touch()
        if anyone:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, self.config.timings.broadcast_timeout)

    async def user_event(self, name: str, payload: bytes, coalesce: bool = True) -> None:
        """Broadcast a user event; raises SerfError when it is over the size limit."""
        await self._runner.call(self._locked(lambda: self.core.user_event(name, payload, coalesce)))

    async def remove_failed_node(self, name: str, prune: bool = False) -> None:
        """Force-leave: mark a failed member left (and forget it with ``prune``)."""
        await self._runner.call(self._remove_failed(name, prune))

    async def _remove_failed(self, name: str, prune: bool) -> None:
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            anyone = self.core.remove_failed_node(
                name, prune, lambda: fut.done() or fut.set_result(None)
            )
        self._touch()
        if anyone:
            try:
                await asyncio.wait_for(fut, self.config.timings.broadcast_timeout)
            except TimeoutError:
                raise SerfError("timed out broadcasting node removal") from None

    async def query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        filter_nodes: list[str] | None = None,
        filter_tags: dict[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float | None = None,
        on_ack: Callable[[str], Any] | None = None,
        on_response: Callable[[str, bytes], Any] | None = None,
    ) -> QueryResponse:
        """Ask the cluster; collect acks and responses until the query's deadline.

        ``on_ack``/``on_response`` are called on the caller's loop as answers arrive (to
        stream them, as Serf's RPC does); the full collection is returned at the deadline.
        """
        if name.startswith(INTERNAL_QUERY_PREFIX) and name[len(INTERNAL_QUERY_PREFIX) :] not in (
            "ping",
            "conflict",
            "install-key",
            "use-key",
            "remove-key",
            "list-keys",
        ):
            raise SerfError(f"queries cannot contain the {INTERNAL_QUERY_PREFIX!r} prefix")
        return await self._runner.call(
            self._query(
                name,
                payload,
                encode_filters(filter_nodes, filter_tags),
                request_ack,
                relay_factor,
                timeout,
                None,
                self._relay_callbacks(on_ack, on_response),
            )
        )

    @staticmethod
    def _relay_callbacks(
        on_ack: Callable[[str], Any] | None, on_response: Callable[[str, bytes], Any] | None
    ) -> Callable[[QueryResult, int, int], None] | None:
        """Forward new answers to the caller's loop (we run on the gossip loop)."""
        if on_ack is None and on_response is None:
            return None
        loop = asyncio.get_running_loop()

        def relay(res: QueryResult, acks_seen: int, resps_seen: int) -> None:
            for frm in res.acks[acks_seen:]:
                if on_ack is not None:
                    loop.call_soon_threadsafe(on_ack, frm)
            for frm, payload in res.responses[resps_seen:]:
                if on_response is not None:
                    loop.call_soon_threadsafe(on_response, frm, payload)

        return relay

    async def _query(
        self,
        name: str,
        payload: bytes,
        filters: list[bytes],
        ack: bool,
        relay: int,
        timeout: float | None,
        expect: int | None = None,
        forward: Callable[[QueryResult, int, int], None] | None = None,
    ) -> QueryResponse:
        done = asyncio.Event()
        with self._lock:
            res: QueryResult = self.core.query(
                name, payload, filters=filters, request_ack=ack, relay_factor=relay, timeout=timeout
            )

        seen = [0, 0]

        def changed() -> None:
            if forward is not None:
                forward(res, seen[0], seen[1])
                seen[0], seen[1] = len(res.acks), len(res.responses)
            if res.closed or (expect is not None and len(res.responses) >= expect):
                done.set()

        res.on_change = changed
        self._touch()
        await done.wait()
        return QueryResponse(tuple(res.acks), dict(res.responses))

    async def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            out = fn()
        self._touch()
        return out

    # ------------------------------------------------------------ events out

    async def events(self) -> AsyncIterator[Event]:
        """Every event from now on, in order, until shutdown."""
        sub = _Subscriber(asyncio.get_running_loop())
        self._subscribers.append(sub)
        try:
            while True:
                ev = await sub.queue.get()
                if ev is None:
                    return
                yield ev
        finally:
            self._subscribers.remove(sub)

    def subscribe(self) -> asyncio.Queue[Event | None]:
        """A queue receiving every event from now on (None after shutdown)."""
        sub = _Subscriber(asyncio.get_running_loop())
        self._subscribers.append(sub)
        return sub.queue

    def add_listener(self, fn: Callable[[Event], Any]) -> None:
        """Call ``fn(event)`` on the caller's loop for every event."""
        self._callbacks.append((asyncio.get_running_loop(), fn))

    def _count_events(self, events: list[Event]) -> None:
        """serf.member.* counters, and serf.member.flap: a failed member alive again within
        FLAP_TIMEOUT."""
        now = time.monotonic()
        rec = self._metrics
        if rec is None:
            return
        for ev in events:
            if isinstance(ev, MemberEvent):
                name = _EVENT_METRIC.get(ev.type)
                if name is None:
                    continue
                for m in ev.members:
                    rec.incr(name, 1.0, self.metric_labels)
                    if ev.type is MemberEventType.FAILED:
                        self._failed_at[m.name] = now
                    elif ev.type is MemberEventType.JOIN:
                        failed = self._failed_at.pop(m.name, None)
                        if failed is not None and now - failed < FLAP_TIMEOUT:
                            rec.incr("serf.member.flap", 1.0, self.metric_labels)
                    elif ev.type is MemberEventType.LEAVE:
                        self._failed_at.pop(m.name, None)
            elif isinstance(ev, UserEvent):
                rec.incr("serf.events", 1.0, self.metric_labels)

    def _deliver(self, events: list[Event]) -> None:
        if self.metrics is not None:
            self._count_events(events)
        for ev in events:
            for s in list(self._subscribers):
                # A subscriber whose loop has closed is simply gone.
                with contextlib.suppress(RuntimeError):
                    s.loop.call_soon_threadsafe(s.queue.put_nowait, ev)
            for loop, fn in list(self._callbacks):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(fn, ev)

    # ------------------------------------------------------------ the driver (gossip loop)

    def _touch(self) -> None:
        """Carry out what the cores asked for, hand out events, re-arm the timer."""
        core = self._core
        if core is None or self._shutdown:
            return
        with self._lock:
            effects = core.ml.pop_effects()
            events, core.events = core.events, []
            deadline = core.ml.next_deadline()
            lost = core.conflict_lost
        for e in effects:
            self._carry_out(e)
        if events:
            self._deliver(events)
        if lost and not self._conflict_stop:
            log.error("lost a name conflict for %r; shutting down", self.config.node_name)
            self._conflict_stop = True
            self._spawn(self._stop())
            return
        if deadline is not None and (self._timer is None or deadline < self._timer_when):
            if self._timer is not None:
                self._timer.cancel()
            loop = asyncio.get_running_loop()
            self._timer_when = deadline
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._core is None or self._shutdown:
            return
        with self._lock:
            self._core.ml.tick(asyncio.get_running_loop().time())
        self._touch()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _carry_out(self, e: object) -> None:
        assert self._transport is not None
        if isinstance(e, SendPacket):
            for msg in wire.make_compounds(e.msgs):
                packet = wire.encode_packet(msg, self._sec, e.crc)
                self._transport.sendto(packet, e.addr)
                if self._metrics is not None:
                    self._metrics.incr(
                        "memberlist.udp.sent", float(len(packet)), self.metric_labels
                    )
        elif isinstance(e, StartPushPull):
            self._spawn(self._background_push_pull(e))
        elif isinstance(e, StartTcpPing):
            self._spawn(self._tcp_ping(e))

    def _on_packet(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._core is None or self._shutdown:
            return
        if self._metrics is not None:
            self._metrics.incr("memberlist.udp.received", float(len(data)), self.metric_labels)
        try:
            msgs = wire.decode_packet(data, self._sec)
        except (wire.WireError, ValueError) as exc:
            log.debug("dropping packet from %s: %s", addr, exc)
            return
        with self._lock:
            self._core.ml.handle_packet(addr, msgs, asyncio.get_running_loop().time())
        self._touch()

    async def _push_pull(self, addr: tuple[str, int], join: bool) -> None:
        with self._lock:
            mine = self.core.ml.local_push_pull(join)
        payload = wire.encode_stream(wire.encode_push_pull(mine), self._sec)
        msg = await exchange(addr, payload, self._sec, self.config.memberlist.tcp_timeout)
        if msg is None or msg.push_pull is None:
            raise StreamError(
                f"expected push-pull reply, got message type {None if msg is None else msg.type}"
            )
        with self._lock:
            self.core.ml.merge_remote(msg.push_pull, asyncio.get_running_loop().time())
        self._touch()

    async def _background_push_pull(self, e: StartPushPull) -> None:
        try:
            await self._push_pull(e.addr, e.join)
            if e.join:
                with self._lock:
                    self.core.after_join()
                self._touch()
        except (StreamError, VersionMismatch, ValueError) as exc:
            log.debug("push-pull with %s failed: %s", e.addr, exc)

    async def _tcp_ping(self, e: StartTcpPing) -> None:
        loop = asyncio.get_running_loop()
        ok = refused = False
        try:
            payload = wire.encode_stream(e.ping.encode(), self._sec)
            msg = await exchange(e.addr, payload, self._sec, max(0.0, e.deadline - loop.time()))
            ok = msg is not None and msg.ack is not None and msg.ack.seq_no == e.seq
        except (StreamError, ValueError) as exc:
            refused = isinstance(exc, ConnectionRefused)
            log.debug("fallback ping to %s failed: %s", e.addr, exc)
        if self._core is None or self._shutdown:
            return
        with self._lock:
            self._core.ml.tcp_ping_result(e.seq, ok, loop.time(), refused)
        self._touch()

    async def _on_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.memberlist.tcp_timeout
        try:
            msg = await read_message(reader, self._sec, deadline)
            core = self._core
            if core is None or self._shutdown:
                return
            if msg.type == MsgType.PUSH_PULL and msg.push_pull is not None:
                if self._push_pulls >= self.config.memberlist.max_push_pulls:
                    raise StreamError("Too many pending push/pull requests")
                self._push_pulls += 1
                try:
                    with self._lock:
                        mine = core.ml.local_push_pull(msg.push_pull.join)
                    stream_write(writer, wire.encode_stream(wire.encode_push_pull(mine), self._sec))
                    await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
                    with self._lock:
                        core.ml.merge_remote(msg.push_pull, loop.time())
                finally:
                    self._push_pulls -= 1
            elif msg.type == MsgType.PING and msg.ping is not None:
                with self._lock:
                    ack = core.ml.stream_ping(msg.ping)
                if ack is not None:
                    stream_write(writer, wire.encode_stream(ack, self._sec))
                    await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
            elif msg.type == MsgType.USER:
                if msg.user:
                    with self._lock:
                        core.notify_msg(msg.user)
            else:
                raise StreamError(f"unexpected stream message type {msg.type}")
            self._touch()
        except (StreamError, VersionMismatch, OSError, TimeoutError) as exc:
            log.debug("stream from %s: %s", writer.get_extra_info("peername"), exc)
            if isinstance(exc, StreamError | VersionMismatch):
                with contextlib.suppress(Exception):
                    from consulpy.gossip.messages import ErrResp

                    stream_write(writer, wire.encode_stream(ErrResp(str(exc)).encode(), self._sec))
                    await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class KeyManager:
    """Cluster-wide keyring changes through Serf's internal key queries (like ``serf keys``)."""

    def __init__(self, serf: Serf) -> None:
        self._serf = serf

    async def _run(self, kind: str, key: str | None, relay_factor: int) -> KeyringReport:
        payload = b""
        if key is not None:
            try:
                raw = base64.b64decode(key, validate=True)
            except ValueError as exc:
                raise KeyringError(f"Invalid key: {exc}") from None
            payload = encode_key_request(raw)
        n = sum(1 for m in self._serf.members() if m.status.value in (1, 2))
        # Stop waiting as soon as every live member has answered.
        serf = self._serf
        resp = await serf._runner.call(
            serf._query(INTERNAL_QUERY_PREFIX + kind, payload, [], False, relay_factor, None, n)
        )
        messages: dict[str, str] = {}
        keys: dict[str, int] = {}
        primary: dict[str, int] = {}
        num_err = 0
        for frm, body in resp.responses.items():
            try:
                kr = KeyResponse.decode(body)
            except ValueError:
                messages[frm] = "Failed to decode key response"
                num_err += 1
                continue
            if not kr.result:
                messages[frm] = kr.message
                num_err += 1
            elif kr.message:
                messages[frm] = kr.message
            for k in kr.keys:
                keys[k] = keys.get(k, 0) + 1
            if kr.primary_key:
                primary[kr.primary_key] = primary.get(kr.primary_key, 0) + 1
        return KeyringReport(n, len(resp.responses), num_err, messages, keys, primary)

    async def install_key(self, key: str, relay_factor: int = 0) -> KeyringReport:
        return await self._run("install-key", key, relay_factor)

    async def use_key(self, key: str, relay_factor: int = 0) -> KeyringReport:
        return await self._run("use-key", key, relay_factor)

    async def remove_key(self, key: str, relay_factor: int = 0) -> KeyringReport:
        return await self._run("remove-key", key, relay_factor)

    async def list_keys(self, relay_factor: int = 0) -> KeyringReport:
        return await self._run("list-keys", None, relay_factor)
