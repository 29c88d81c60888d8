"""TCP and UDP checks: can we connect (TCP, optionally with a TLS handshake), can we send
(UDP, where silence until the timeout counts as success and only an ICMP error fails)."""

from __future__ import annotations

import asyncio
import socket

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.dial import DialError, close_writer, dial_tcp
from consulpy.agent.checks.goerrors import (
    dial_text,
    syscall_text,
)
from consulpy.agent.checks.runner import Result
from consulpy.agent.checks.status import CRITICAL, PASSING
from consulpy.agent.checks.tls import CheckTLS, client_context
from consulpy.util.hostport import AddressError, join_host_port, split_host_port


class TCPProbe:
    def __init__(self, definition: CheckDefinition, *, agent_tls: CheckTLS | None = None):
        self.addr = definition.tcp
        self.timeout = definition.timeout
        self.server_name = definition.tls_server_name
        self.tls = (
            client_context(skip_verify=definition.tls_skip_verify, agent_tls=agent_tls)
            if definition.tcp_use_tls
            else None
        )

    async def close(self) -> None:
        return None

    async def run(self) -> Result:
        label = "TCP+TLS" if self.tls is not None else "TCP"
        try:
            async with asyncio.timeout(self.timeout):
                _reader, writer = await dial_tcp(
                    self.addr, tls=self.tls, server_name=self.server_name
                )
        except TimeoutError:
            return CRITICAL, f"dial tcp {self.addr}: i/o timeout"
        except DialError as exc:
            return CRITICAL, str(exc)
        await close_writer(writer)
        return PASSING, f"{label} connect {self.addr}: Success"


class _UDPReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.done: asyncio.Future[OSError | None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_result(exc if isinstance(exc, OSError) else OSError(str(exc)))


class UDPProbe:
    """Sends an empty datagram on a connected socket and waits up to the timeout.

    A reply or silence is success (UDP services rarely answer an empty probe); a connected
    UDP socket surfaces the ICMP "port unreachable" as ECONNREFUSED, which is the failure.
    """

    def __init__(self, definition: CheckDefinition) -> None:
        self.addr = definition.udp
        self.timeout = definition.timeout

    async def close(self) -> None:
        return None

    async def run(self) -> Result:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(self.addr)
            infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM)
        except (AddressError, socket.gaierror) as exc:
            return CRITICAL, dial_text("udp", self.addr, exc)
        family, _type, proto, _name, sockaddr = infos[0]
        remote = join_host_port(str(sockaddr[0]), int(sockaddr[1]))
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            sock.connect(sockaddr)
            # asyncio's transport drops empty datagrams, so the probe goes out directly.
            sock.send(b"")
            transport, protocol = await loop.create_datagram_endpoint(_UDPReply, sock=sock)
        except OSError as exc:
            sock.close()
            return CRITICAL, dial_text("udp", remote, exc)
        except BaseException:
            sock.close()
            raise
        try:
            local = transport.get_extra_info("sockname")
            local_text = join_host_port(str(local[0]), int(local[1])) if local else ""
            try:
                async with asyncio.timeout(self.timeout):
                    error = await protocol.done
            except TimeoutError:
                error = None
            if error is not None:
                return CRITICAL, f"read udp {local_text}->{remote}: read: {syscall_text(error)}"
            return PASSING, f"UDP connect {self.addr}: Success"
        finally:
            transport.close()
