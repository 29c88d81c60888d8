"""Capture real Serf 0.9.4 wire traffic between two Debian ``serf agent`` processes.

How: agent A binds 127.0.0.1:PA and advertises 127.0.0.2:PA; agent B binds 127.0.0.1:PB and
advertises 127.0.0.3:PB. This script owns both advertised addresses (UDP and TCP). A datagram
for A's advertised address is forwarded to A's real socket *from B's advertised address* (and
the other way round), so each agent sees its peer at the peer's advertised address and every
byte passes through here, where it is recorded as hex in a JSON-lines file.

Run: ``python tests/gossip/data/capture.py OUT.jsonl [--encrypt BASE64KEY]``. The scenario is
join, a user event each way, a query, ``serf keys -list`` (when encrypted), B leaving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


class Recorder:
    def __init__(self, path: str) -> None:
        self.f = open(path, "w")  # noqa: SIM115 - open for the whole capture
        self.t0 = time.monotonic()

    def rec(self, **kw: object) -> None:
        kw["t"] = round(time.monotonic() - self.t0, 4)
        self.f.write(json.dumps(kw) + "\n")
        self.f.flush()


class UDPRelay(asyncio.DatagramProtocol):
    def __init__(self, name: str, rec: Recorder) -> None:
        self.name = name
        self.rec = rec
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: UDPRelay | None = None
        self.real: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Addressed to this agent: record, then deliver from the *other* advertised address.
        assert self.peer is not None and self.peer.transport is not None
        self.rec.rec(proto="udp", to=self.name, hex=data.hex())
        self.peer.transport.sendto(data, self.real)


async def tcp_relay(name: str, real: tuple[str, int], rec: Recorder, counter: list[int]):
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        counter[0] += 1
        conn = counter[0]
        ur, uw = await asyncio.open_connection(*real)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, d: str) -> None:
            try:
                while data := await src.read(65536):
                    rec.rec(proto="tcp", to=name, conn=conn, dir=d, hex=data.hex())
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                try:
                    dst.write_eof()
                except (OSError, RuntimeError):
                    pass

        await asyncio.gather(pipe(r, uw, "request"), pipe(ur, w, "response"))
        w.close()
        uw.close()

    return handle


async def run(*args: str) -> str:
    """Run a serf CLI command off the loop: the relay must keep forwarding meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        "serf", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return out.decode()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--encrypt", default="")
    a = ap.parse_args()
    rec = Recorder(a.out)
    loop = asyncio.get_running_loop()
    pa, pb = free_port(), free_port()
    ra, rb = free_port(), free_port()
    ua, ub = UDPRelay("A", rec), UDPRelay("B", rec)
    ua.real, ub.real = ("127.0.0.1", pa), ("127.0.0.1", pb)
    ua.peer, ub.peer = ub, ua
    await loop.create_datagram_endpoint(lambda: ua, local_addr=("127.0.0.2", pa))
    await loop.create_datagram_endpoint(lambda: ub, local_addr=("127.0.0.3", pb))
    counter = [0]
    sa = await asyncio.start_server(
        await tcp_relay("A", ("127.0.0.1", pa), rec, counter), "127.0.0.2", pa
    )
    sb = await asyncio.start_server(
        await tcp_relay("B", ("127.0.0.1", pb), rec, counter), "127.0.0.3", pb
    )
    tmp = tempfile.mkdtemp()
    enc = [f"-encrypt={a.encrypt}"] if a.encrypt else []
    procs = []
    for name, port, adv, rpc in (("A", pa, "127.0.0.2", ra), ("B", pb, "127.0.0.3", rb)):
        procs.append(
            subprocess.Popen(
                [
                    "serf",
                    "agent",
                    f"-node=node-{name}",
                    f"-bind=127.0.0.1:{port}",
                    f"-advertise={adv}:{port}",
                    f"-rpc-addr=127.0.0.1:{rpc}",
                    "-tag",
                    f"role={name}",
                    *enc,
                ],
                stdout=open(f"{tmp}/{name}.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
        )
    await asyncio.sleep(1.5)
    rec.rec(step="join")
    print(await run("join", f"-rpc-addr=127.0.0.1:{rb}", f"127.0.0.2:{pa}"))
    await asyncio.sleep(4)
    rec.rec(step="event")
    await run("event", f"-rpc-addr=127.0.0.1:{ra}", "-coalesce=false", "deploy", "v1-payload")
    await run("event", f"-rpc-addr=127.0.0.1:{rb}", "hello", "")
    await asyncio.sleep(2)
    rec.rec(step="query")
    print(await run("query", f"-rpc-addr=127.0.0.1:{ra}", "-timeout=2s", "uptime", "x"))
    if a.encrypt:
        rec.rec(step="keys")
        print(await run("keys", f"-rpc-addr=127.0.0.1:{ra}", "-list"))
    await asyncio.sleep(2)
    rec.rec(step="leave")
    await run("leave", f"-rpc-addr=127.0.0.1:{rb}")
    await asyncio.sleep(3)
    print(await run("members", f"-rpc-addr=127.0.0.1:{ra}"))
    for p in procs:
        p.terminate()
        p.wait()
    sa.close()
    sb.close()
    rec.rec(step="done", logs=tmp)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
