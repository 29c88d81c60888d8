"""Go-shaped error texts for failed probes.

Check output is what operators read in the UI and what scripts grep for, and Consul's outputs
are Go error strings (`dial tcp 10.0.0.5:80: connect: connection refused`). We render Python's
socket and TLS errors in the same shape so the outputs read the same.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

from consulpy.util.hostport import AddressError, split_host_port

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.EADDRNOTAVAIL: "cannot assign requested address",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "broken pipe",
}


def syscall_text(exc: OSError) -> str:
    """An OSError's reason in Go's lowercase syscall wording."""
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def tls_text(exc: ssl.SSLError | ssl.CertificateError) -> str:
    """A TLS failure as crypto/tls would word it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or exc.reason or str(exc)).lower()
        if "self-signed" in reason or "self signed" in reason or "unable to get" in reason:
            detail = "x509: certificate signed by unknown authority"
        elif "hostname mismatch" in reason or "ip address mismatch" in reason:
            detail = "x509: certificate is not valid for the requested name"
        elif "expired" in reason or "not yet valid" in reason:
            detail = "x509: certificate has expired or is not yet valid"
        else:
            detail = f"x509: {reason}"
        return f"tls: failed to verify certificate: {detail}"
    reason = getattr(exc, "reason", None) or str(exc)
    if reason == "WRONG_VERSION_NUMBER":
        return "tls: first record does not look like a TLS handshake"
    return "tls: " + reason.lower().replace("_", " ")


def dial_text(network: str, addr: str, exc: BaseException) -> str:
    """net.Dial's error: `dial tcp 127.0.0.1:1: connect: connection refused`."""
    if isinstance(exc, AddressError):
        return f"dial {network}: {exc}"
    if isinstance(exc, socket.gaierror):
        host = addr
        try:
            host = split_host_port(addr)[0]
        except AddressError:
            pass
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return f"dial {network}: lookup {host}: no such host"
        return f"dial {network}: lookup {host}: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return f"dial {network} {addr}: i/o timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return tls_text(exc)
    if isinstance(exc, OSError):
        return f"dial {network} {addr}: connect: {syscall_text(exc)}"
    return f"dial {network} {addr}: {exc}"
