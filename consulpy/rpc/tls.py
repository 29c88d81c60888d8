"""TLS contexts built from Consul's settings: the server port (internal RPC and Raft) and,
through `server_context`, the HTTPS API.

- A certificate and key (`cert_file`, `key_file`) turn TLS on for the listener and for
  outgoing connections; every connection on the port is then TLS.
- `verify_incoming`: clients must present a certificate signed by `ca_file`/`ca_path`.
- `verify_outgoing`: the server's certificate must be signed by that CA.
- `verify_server_hostname`: it must also be valid for `server.<datacenter>.<domain>`, which
  keeps a client certificate from posing as a server.

Reload (`reload_into`) loads the new certificate chain and CAs into the *same* SSLContext
objects: a context is only consulted at handshake time, so open connections keep the
session they negotiated and new ones get the new material. New material is first loaded
into a scratch context, so a bad file leaves the running contexts untouched.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from consulpy.util.tlsnames import TLSConfigError, ca_bundle, min_version, openssl_ciphers

__all__ = ["RPCTLS", "TLSConfigError", "build", "min_version", "openssl_ciphers", "server_context"]


@dataclass(frozen=True)
class RPCTLS:
    server: ssl.SSLContext | None
    client: ssl.SSLContext | None
    server_hostname: str | None


def _settings(tls: Any) -> dict[str, Any]:
    return {
        "cert": getattr(tls, "cert_file", None),
        "key": getattr(tls, "key_file", None),
        "ca_file": getattr(tls, "ca_file", None),
        "ca_path": getattr(tls, "ca_path", None),
        "min_version": getattr(tls, "tls_min_version", None),
        "ciphers": getattr(tls, "tls_cipher_suites", None),
    }


def _common(ctx: ssl.SSLContext, s: dict[str, Any]) -> None:
    ctx.minimum_version = min_version(s["min_version"])
    ciphers = openssl_ciphers(s["ciphers"])
    if ciphers:
        ctx.set_ciphers(ciphers)


def _load(ctx: ssl.SSLContext, s: dict[str, Any], *, cas: bool) -> None:
    ctx.load_cert_chain(s["cert"], s["key"])
    if cas and (s["ca_file"] or s["ca_path"]):
        ctx.load_verify_locations(cadata=ca_bundle(s["ca_file"], s["ca_path"]))


def server_context(tls: Any, *, alpn: list[str] | None = None) -> ssl.SSLContext:
    """A listener context for one `tls.<stanza>` (cert, key, CA, verify_incoming, versions)."""
    s = _settings(tls)
    if not (s["cert"] and s["key"]):
        raise TLSConfigError("TLS needs cert_file and key_file")
    verify_incoming = bool(getattr(tls, "verify_incoming", False))
    if verify_incoming and not (s["ca_file"] or s["ca_path"]):
        raise TLSConfigError("verify_incoming needs ca_file or ca_path")
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _common(ctx, s)
        _load(ctx, s, cas=verify_incoming)
        if verify_incoming:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if alpn:
            ctx.set_alpn_protocols(alpn)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS material: {exc}") from exc
    return ctx


def build(tls: Any, datacenter: str, domain: str = "consul") -> RPCTLS:
    """Contexts for the listener and for dialing, or Nones when TLS is off."""
    s = _settings(tls)
    verify_incoming = bool(getattr(tls, "verify_incoming", False))
    verify_outgoing = bool(getattr(tls, "verify_outgoing", False))
    verify_hostname = bool(getattr(tls, "verify_server_hostname", False))
    if not (s["cert"] and s["key"]):
        if verify_incoming:
            raise TLSConfigError("verify_incoming needs cert_file and key_file")
        return RPCTLS(None, None, None)
    if (verify_incoming or verify_outgoing) and not (s["ca_file"] or s["ca_path"]):
        raise TLSConfigError("verify_incoming/verify_outgoing need ca_file or ca_path")
    server = server_context(tls)
    try:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _common(client, s)
        _load(client, s, cas=verify_outgoing)  # the cert is presented when a server verifies
        if verify_outgoing:
            client.verify_mode = ssl.CERT_REQUIRED
            client.check_hostname = verify_hostname
        else:
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS material: {exc}") from exc
    hostname = f"server.{datacenter}.{domain.strip('.')}" if verify_hostname else None
    return RPCTLS(server, client, hostname)


def check_material(tls: Any) -> None:
    """Load `tls`'s files into a scratch context: raises TLSConfigError if any is bad."""
    s = _settings(tls)
    if not (s["cert"] and s["key"]):
        raise TLSConfigError("TLS needs cert_file and key_file")
    try:
        _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), s, cas=True)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS material: {exc}") from exc


def reload_into(ctx: ssl.SSLContext, tls: Any) -> None:
    """Load `tls`'s (new) cert chain and CAs into the live `ctx`, after checking them.

    New handshakes use them; open connections are untouched. CAs are added to the trust
    store: a CA removed from the files stays trusted until restart (an OpenSSL store only
    grows)."""
    check_material(tls)
    s = _settings(tls)
    verifying = ctx.verify_mode != ssl.CERT_NONE
    try:
        _load(ctx, s, cas=verifying)
    except (OSError, ssl.SSLError) as exc:  # raced with a file change after the check
        raise TLSConfigError(f"cannot load TLS material: {exc}") from exc


def reload_rpc(current: RPCTLS, tls: Any) -> None:
    """Swap the certificates of the server-port contexts in place (see `reload_into`)."""
    for ctx in (current.server, current.client):
        if ctx is not None:
            reload_into(ctx, tls)
