"""Capture real Serf 0.9.4 wire traffic between two Debian ``serf agent`` processes.

How: agents A, B and C bind 127.0.0.1 (each its own port) and advertise 127.0.0.2, .3 and .4
with the same ports. This script owns the advertised addresses (UDP and TCP). A datagram for
an agent's advertised address is forwarded to that agent's real socket *from the sender's
advertised address*, so every agent sees its peers at their advertised addresses and every
byte passes through here, where it is recorded as hex in a JSON-lines file.

Run: ``python tests/gossip/data/capture.py OUT.jsonl [--encrypt BASE64KEY]``. The scenario is
B and C join A, user events, a query, ``serf keys -list`` (when encrypted), C paused for
3 s (suspicion, indirect pings, nacks, refutation), B leaving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time

from consulpy.util.ports import free_ports


class Recorder:
    def __init__(self, path: str) -> None:
        self.f = open(path, "w")  # noqa: SIM115 - open for the whole capture
        self.t0 = time.monotonic()

    def rec(self, **kw: object) -> None:
        kw["t"] = round(time.monotonic() - self.t0, 4)
        self.f.write(json.dumps(kw) + "\n")
        self.f.flush()


class UDPRelay(asyncio.DatagramProtocol):
    """The advertised UDP address of one agent."""

    def __init__(self, name: str, rec: Recorder, relays: dict[int, UDPRelay]) -> None:
        self.name = name
        self.rec = rec
        self.relays = relays  # real port of each agent -> that agent's relay
        self.transport: asyncio.DatagramTransport | None = None
        self.real: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Addressed to this agent: record, then deliver from the sender's advertised address.
        sender = self.relays.get(addr[1])
        if sender is None or sender.transport is None:
            return
        self.rec.rec(proto="udp", to=self.name, frm=sender.name, hex=data.hex())
        sender.transport.sendto(data, self.real)


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
    names = ["A", "B", "C"]
    picked = free_ports(2 * len(names), udp=True)  # gossip and RPC ports, all distinct
    ports = dict(zip(names, picked[: len(names)], strict=True))
    rpcs = dict(zip(names, picked[len(names) :], strict=True))
    adv = {n: f"127.0.0.{2 + i}" for i, n in enumerate(names)}
    relays: dict[int, UDPRelay] = {}
    servers = []
    counter = [0]
    for n in names:
        r = UDPRelay(n, rec, relays)
        r.real = ("127.0.0.1", ports[n])
        relays[ports[n]] = r
        await loop.create_datagram_endpoint(lambda r=r: r, local_addr=(adv[n], ports[n]))
        handler = await tcp_relay(n, ("127.0.0.1", ports[n]), rec, counter)
        servers.append(await asyncio.start_server(handler, adv[n], ports[n]))
    tmp = tempfile.mkdtemp()
    enc = [f"-encrypt={a.encrypt}"] if a.encrypt else []
    procs = {}
    for n in names:
        procs[n] = subprocess.Popen(
            [
                "serf",
                "agent",
                f"-node=node-{n}",
                f"-bind=127.0.0.1:{ports[n]}",
                f"-advertise={adv[n]}:{ports[n]}",
                f"-rpc-addr=127.0.0.1:{rpcs[n]}",
                "-tag",
                f"role={n}",
                *enc,
            ],
            stdout=open(f"{tmp}/{n}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
    await asyncio.sleep(1.5)
    rec.rec(step="join")
    for n in ("B", "C"):
        print(await run("join", f"-rpc-addr=127.0.0.1:{rpcs[n]}", f"{adv['A']}:{ports['A']}"))
    await asyncio.sleep(4)
    rec.rec(step="event")
    await run(
        "event", f"-rpc-addr=127.0.0.1:{rpcs['A']}", "-coalesce=false", "deploy", "v1-payload"
    )
    await run("event", f"-rpc-addr=127.0.0.1:{rpcs['B']}", "hello", "")
    await asyncio.sleep(2)
    rec.rec(step="query")
    print(await run("query", f"-rpc-addr=127.0.0.1:{rpcs['A']}", "-timeout=2s", "uptime", "x"))
    if a.encrypt:
        rec.rec(step="keys")
        print(await run("keys", f"-rpc-addr=127.0.0.1:{rpcs['A']}", "-list"))
    await asyncio.sleep(2)
    # C stops answering for a while: probes fail, indirect probes and nacks, suspicion;
    # when it resumes it refutes with a higher incarnation.
    rec.rec(step="pause")
    procs["C"].send_signal(signal.SIGSTOP)
    await asyncio.sleep(3)
    procs["C"].send_signal(signal.SIGCONT)
    await asyncio.sleep(3)
    rec.rec(step="leave")
    await run("leave", f"-rpc-addr=127.0.0.1:{rpcs['B']}")
    await asyncio.sleep(3)
    print(await run("members", f"-rpc-addr=127.0.0.1:{rpcs['A']}"))
    for p in procs.values():
        p.terminate()
        p.wait()
    for srv in servers:
        srv.close()
    rec.rec(step="done", logs=tmp)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
