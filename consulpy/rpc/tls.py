"""TLS for the server port (internal RPC and Raft), from Consul's settings.

- A certificate and key (`cert_file`, `key_file`) turn TLS on for the listener and for
  outgoing connections; every connection on the port is then TLS.
- `verify_incoming`: clients must present a certificate signed by `ca_file`/`ca_path`.
- `verify_outgoing`: the server's certificate must be signed by that CA.
- `verify_server_hostname`: it must also be valid for `server.<datacenter>.<domain>`, which
  keeps a client certificate from posing as a server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

_MIN_VERSIONS = {
    "tlsv1_0": ssl.TLSVersion.TLSv1,
    "tlsv1_1": ssl.TLSVersion.TLSv1_1,
    "tlsv1_2": ssl.TLSVersion.TLSv1_2,
    "tlsv1_3": ssl.TLSVersion.TLSv1_3,
}


class TLSConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RPCTLS:
    server: ssl.SSLContext | None
    client: ssl.SSLContext | None
    server_hostname: str | None


def _min_version(ctx: ssl.SSLContext, name: str) -> None:
    version = _MIN_VERSIONS.get((name or "tlsv1_2").lower())
    if version is not None:
        ctx.minimum_version = version


def build(tls: object, datacenter: str, domain: str = "consul") -> RPCTLS:
    """Contexts for the listener and for dialing, or Nones when TLS is off."""
    cert = getattr(tls, "cert_file", None)
    key = getattr(tls, "key_file", None)
    ca_file = getattr(tls, "ca_file", None)
    ca_path = getattr(tls, "ca_path", None)
    verify_incoming = bool(getattr(tls, "verify_incoming", False))
    verify_outgoing = bool(getattr(tls, "verify_outgoing", False))
    verify_hostname = bool(getattr(tls, "verify_server_hostname", False))
    min_version = getattr(tls, "tls_min_version", "tlsv1_2") or "tlsv1_2"
    if not (cert and key):
        if verify_incoming:
            raise TLSConfigError("verify_incoming needs cert_file and key_file")
        return RPCTLS(None, None, None)
    if (verify_incoming or verify_outgoing) and not (ca_file or ca_path):
        raise TLSConfigError("verify_incoming/verify_outgoing need ca_file or ca_path")
    try:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _min_version(server, min_version)
        server.load_cert_chain(cert, key)
        if verify_incoming:
            server.verify_mode = ssl.CERT_REQUIRED
            server.load_verify_locations(cafile=ca_file, capath=ca_path)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _min_version(client, min_version)
        client.load_cert_chain(cert, key)  # presented when the server verifies incoming
        if verify_outgoing:
            client.load_verify_locations(cafile=ca_file, capath=ca_path)
            client.verify_mode = ssl.CERT_REQUIRED
            client.check_hostname = verify_hostname
        else:
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS material: {exc}") from exc
    hostname = f"server.{datacenter}.{domain.strip('.')}" if verify_hostname else None
    return RPCTLS(server, client, hostname)
