"""Connecting the way Go's net.Dialer does, with its error texts.

Each resolved address is tried in turn until one connects; a failure reports the first error
with the resolved address, as Go does (`dial tcp 127.0.0.1:9: connect: connection refused`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from consulpy.agent.checks.goerrors import (
    dial_text,
    tls_text,
)
from consulpy.util.hostport import AddressError, join_host_port, split_host_port


class DialError(Exception):
    """Connecting failed; str() is the Go-shaped error text."""


async def dial_tcp(
    addr: str,
    *,
    tls: ssl.SSLContext | None = None,
    server_name: str = "",
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TCP (optionally TLS) stream to host:port; the caller bounds the time.

    A timeout surfaces as TimeoutError from the caller's asyncio.timeout; the caller words it.
    """
    try:
        host, port = split_host_port(addr)
    except AddressError as exc:
        raise DialError(dial_text("tcp", addr, exc)) from None
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DialError(dial_text("tcp", addr, exc)) from None
    first: str | None = None
    for family, _type, proto, _name, sockaddr in infos:
        target = join_host_port(str(sockaddr[0]), int(sockaddr[1]))
        try:
            sock = socket.socket(family, socket.SOCK_STREAM, proto)
        except OSError as exc:
            first = first or dial_text("tcp", target, exc)
            continue
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            first = first or dial_text("tcp", target, exc)
            continue
        except BaseException:
            sock.close()
            raise
        try:
            return await asyncio.open_connection(
                sock=sock,
                ssl=tls,
                server_hostname=(server_name or host) if tls is not None else None,
            )
        except (ssl.SSLError, ssl.CertificateError) as exc:
            sock.close()
            raise DialError(tls_text(exc)) from None
        except OSError as exc:
            sock.close()
            # The TCP connection was up; the TLS handshake broke it (reset, EOF).
            raise DialError(f"tls handshake with {target}: {exc.strerror or exc}") from None
        except BaseException:
            sock.close()
            raise
    raise DialError(first or f"dial tcp {addr}: no addresses")


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream without waiting on the peer.

    For TLS, close() queues our close_notify and would then wait for the peer's, which many
    servers never send; a check must not spend its timeout (or hang its stop) on that, so
    the socket is dropped right after (as Go's tls.Conn.Close does).
    """
    writer.close()
    if writer.get_extra_info("ssl_object") is not None:
        writer.transport.abort()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
