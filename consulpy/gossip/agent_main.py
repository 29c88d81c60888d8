"""A stand-alone gossip agent: one Serf member per process, driven over Serf's agent RPC.

``python -m consulpy.gossip.agent_main -node=n1 -bind=127.0.0.1:0 -rpc-addr=127.0.0.1:0``
prints ``ready gossip=PORT rpc=PORT`` on stdout once listening. It speaks the subset of Serf's
RPC that ``serf members|join|event|leave|force-leave|keys|query|stats|rtt`` use, so the interop
tests and ``consulpy bench gossip`` drive it exactly like a real ``serf agent``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

import msgpack

from consulpy.gossip.config import MemberlistConfig
from consulpy.gossip.events import Event, Query
from consulpy.gossip.keyring import KeyringError
from consulpy.gossip.rpc import WITH_BODY, event_record, member_record, stream_filter
from consulpy.gossip.serf import JoinError, Serf, SerfConfig, SerfError
from consulpy.gossip.transport import write as stream_write
from consulpy.util.eventloop import run as run_loop

log = logging.getLogger("consulpy.gossip.agent")


def _split_hostport(s: str, default_port: int) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    if not host:
        return s, default_port
    return host, int(port)


class Agent:
    def __init__(self, serf: Serf) -> None:
        self.serf = serf
        self.done = asyncio.Event()
        self.queries: dict[int, Query] = {}
        self.subs: list[tuple[set[str], asyncio.StreamWriter, int]] = []

    def on_event(self, ev: Event) -> None:
        kind, rec = event_record(ev)
        if isinstance(ev, Query):
            self.queries[ev.id] = ev
        p = msgpack.Packer(use_bin_type=True)
        for types, writer, seq in list(self.subs):
            if kind in types and not writer.is_closing():
                writer.write(p.pack({"Seq": seq, "Error": ""}) + p.pack(rec))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1024 * 1024)
        p = msgpack.Packer(use_bin_type=True)

        async def next_obj() -> Any:
            while True:
                with contextlib.suppress(msgpack.OutOfData):
                    return unpacker.unpack()
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError
                unpacker.feed(data)

        def reply(seq: int, error: str = "", body: Any = None, has_body: bool = False) -> None:
            out = p.pack({"Seq": seq, "Error": error})
            if has_body and not error:
                out += p.pack(body)
            stream_write(writer, out)

        try:
            while True:
                hdr = await next_obj()
                cmd, seq = hdr.get("Command"), hdr.get("Seq", 0)
                body = await next_obj() if cmd in WITH_BODY else None
                try:
                    await self.dispatch(cmd, seq, body or {}, reply, writer)
                except (SerfError, JoinError, KeyringError, ValueError) as exc:
                    reply(seq, str(exc))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.subs = [s for s in self.subs if s[1] is not writer]
            writer.close()

    async def dispatch(
        self, cmd: str, seq: int, body: dict[str, Any], reply: Any, writer: asyncio.StreamWriter
    ) -> None:
        s = self.serf
        if cmd == "handshake":
            reply(seq)
        elif cmd in ("members", "members-filtered"):
            ms = s.members()
            if cmd == "members-filtered":
                import re

                status = body.get("Status") or ""
                name = body.get("Name") or ""
                tags = body.get("Tags") or {}
                ms = [
                    m
                    for m in ms
                    if (not status or re.fullmatch(status, m.status.label()))
                    and (not name or re.fullmatch(name, m.name))
                    and all(re.fullmatch(v, m.tags.get(k, "")) for k, v in tags.items())
                ]
            reply(seq, body={"Members": [member_record(m) for m in ms]}, has_body=True)
        elif cmd == "join":
            n = await s.join(
                list(body.get("Existing") or []), ignore_old=not body.get("Replay", False)
            )
            reply(seq, body={"Num": n}, has_body=True)
        elif cmd == "event":
            await s.user_event(
                body.get("Name", ""),
                bytes(body.get("Payload") or b""),
                bool(body.get("Coalesce", True)),
            )
            reply(seq)
        elif cmd == "force-leave":
            await s.remove_failed_node(body.get("Node", ""), prune=bool(body.get("Prune")))
            reply(seq)
        elif cmd == "leave":
            await s.leave()
            reply(seq)
            await writer.drain()
            self.done.set()
        elif cmd == "stream":
            self.subs.append((stream_filter(body.get("Type", "*")), writer, seq))
            reply(seq)
        elif cmd == "stop":
            stop = body.get("Stop")
            self.subs = [x for x in self.subs if not (x[1] is writer and x[2] == stop)]
            reply(seq)
        elif cmd in ("install-key", "use-key", "remove-key", "list-keys"):
            km = s.key_manager
            if cmd == "list-keys":
                r = await km.list_keys()
            else:
                fn = {
                    "install-key": km.install_key,
                    "use-key": km.use_key,
                    "remove-key": km.remove_key,
                }[cmd]
                r = await fn(body.get("Key", ""))
            out = {
                "Messages": r.messages,
                "Keys": r.keys,
                "NumNodes": r.num_nodes,
                "NumErr": r.num_err,
                "NumResp": r.num_resp,
            }
            err = ""
            if r.num_err:
                err = f"{r.num_err}/{r.num_nodes} nodes reported failure"
            elif r.num_resp != r.num_nodes:
                err = f"{r.num_resp}/{r.num_nodes} nodes reported success"
            stream_write(
                writer,
                msgpack.packb({"Seq": seq, "Error": err}, use_bin_type=True)
                + msgpack.packb(out, use_bin_type=True),
            )
        elif cmd == "query":
            await self.query(seq, body, writer)
        elif cmd == "respond":
            q = self.queries.pop(int(body.get("ID", 0)), None)
            if q is None:
                reply(seq, "No pending query with that ID")
            else:
                q.respond(bytes(body.get("Payload") or b""))
                reply(seq)
        elif cmd == "stats":
            st = s.stats()
            reply(seq, body={"agent": {"name": s.config.node_name}, "serf": st}, has_body=True)
        elif cmd == "get-coordinate":
            coord = s.cached_coordinate(str(body.get("Node", "")))
            rec = (
                coord.to_api()
                if coord is not None
                else {"Vec": [], "Error": 0.0, "Adjustment": 0.0, "Height": 0.0}
            )
            reply(seq, body={"Coord": rec, "Ok": coord is not None}, has_body=True)
        elif cmd == "tags":
            tags = dict(s.local_member().tags)
            tags.update(body.get("Tags") or {})
            for k in body.get("DeleteTags") or []:
                tags.pop(k, None)
            await s.set_tags(tags)
            reply(seq)
        else:
            reply(seq, f"Unsupported command: {cmd}")

    async def query(self, seq: int, body: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        """Stream acks and responses as they arrive (the serf CLI stops at its deadline)."""
        p = msgpack.Packer(use_bin_type=True)
        stream_write(writer, p.pack({"Seq": seq, "Error": ""}))

        def record(kind: str, frm: str, payload: bytes | None) -> None:
            if not writer.is_closing():
                writer.write(
                    p.pack({"Seq": seq, "Error": ""})
                    + p.pack({"Type": kind, "From": frm, "Payload": payload})
                )

        timeout = (body.get("Timeout") or 0) / 1e9 or None
        await self.serf.query(
            body.get("Name", ""),
            bytes(body.get("Payload") or b""),
            filter_nodes=body.get("FilterNodes") or None,
            filter_tags=body.get("FilterTags") or None,
            request_ack=bool(body.get("RequestAck")),
            relay_factor=int(body.get("RelayFactor") or 0),
            timeout=timeout,
            on_ack=lambda frm: record("ack", frm, None),
            on_response=lambda frm, payload: record("response", frm, payload),
        )
        record("done", "", None)


async def run(args: argparse.Namespace) -> int:
    host, port = _split_hostport(args.bind, 7946)
    tags = dict(t.split("=", 1) for t in args.tag)
    ml = MemberlistConfig.profile(args.profile)
    cfg = SerfConfig(
        node_name=args.node,
        bind_addr=host,
        bind_port=port,
        advertise_addr=args.advertise or (host if host != "0.0.0.0" else None),
        tags=tags,
        encrypt_key=args.encrypt or None,
        keyring_file=args.keyring_file or None,
        memberlist=ml,
        disable_coordinates=args.disable_coordinates,
    )
    serf = Serf(cfg)
    await serf.start()
    agent = Agent(serf)
    serf.add_listener(agent.on_event)
    rhost, rport = _split_hostport(args.rpc_addr, 7373)
    server = await asyncio.start_server(agent.handle, rhost, rport)
    rport = server.sockets[0].getsockname()[1]
    print(f"ready gossip={serf.bound_port} rpc={rport}", flush=True)
    if args.join:
        try:
            await serf.join(args.join)
        except JoinError as exc:
            print(f"join failed: {exc}", file=sys.stderr, flush=True)
            await serf.shutdown()
            return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.done.set)
    await agent.done.wait()
    server.close()
    if serf.state not in ("left", "shutdown") and args.leave_on_terminate:
        await serf.leave()
    await serf.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    # Go-style single-dash long flags, as `serf agent` takes them.
    ap = argparse.ArgumentParser(prog="consulpy-gossip-agent", prefix_chars="-")
    ap.add_argument("-node", required=True)
    ap.add_argument("-bind", default="127.0.0.1:7946")
    ap.add_argument("-advertise", default="")
    ap.add_argument("-rpc-addr", dest="rpc_addr", default="127.0.0.1:7373")
    ap.add_argument("-join", action="append", default=[])
    ap.add_argument("-encrypt", default="")
    ap.add_argument("-keyring-file", dest="keyring_file", default="")
    ap.add_argument("-tag", action="append", default=[])
    ap.add_argument("-profile", default="lan", choices=["lan", "wan", "local"])
    ap.add_argument("-leave-on-terminate", dest="leave_on_terminate", action="store_true")
    ap.add_argument("-disable-coordinates", dest="disable_coordinates", action="store_true")
    ap.add_argument("-log-level", dest="log_level", default="warn")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return run_loop(run(args))  # $CONSULPY_EVENT_LOOP, else uvloop when installed
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
