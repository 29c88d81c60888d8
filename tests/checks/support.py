"""Test support: a recorder for runner updates, fast definitions, TLS material."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consulpy.agent.checks import CheckDefinition, parse_check_definition

FAST_MIN_INTERVAL = 0.01
DEADLINE = 10.0


class ZeroRandom(random.Random):
    """An rng whose first-run stagger is always 0, so a check runs as soon as it starts."""

    def random(self) -> float:
        return 0.0


def fast(body: dict[str, Any], **kw: Any) -> CheckDefinition:
    """A definition whose minimum interval is low enough for tests."""
    return parse_check_definition(body, min_interval=FAST_MIN_INTERVAL, **kw)


class Recorder:
    """Collects update(check_id, status, output) calls; wait() polls with a deadline."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, check_id: str, status: str, output: str) -> None:
        self.updates.append((check_id, status, output))
        self._changed.set()

    @property
    def last(self) -> tuple[str, str]:
        return self.updates[-1][1], self.updates[-1][2]

    @property
    def statuses(self) -> list[str]:
        return [s for _, s, _ in self.updates]

    async def wait(
        self, predicate: Callable[[list[tuple[str, str, str]]], bool], timeout: float = DEADLINE
    ) -> tuple[str, str]:
        async with asyncio.timeout(timeout):
            while not predicate(self.updates):
                self._changed.clear()
                await self._changed.wait()
        return self.last

    async def first(self, timeout: float = DEADLINE) -> tuple[str, str]:
        return await self.wait(lambda u: len(u) >= 1, timeout)

    async def count(self, n: int, timeout: float = DEADLINE) -> tuple[str, str]:
        return await self.wait(lambda u: len(u) >= n, timeout)


@dataclass
class TLSMaterial:
    ca_file: Path
    cert_file: Path
    key_file: Path
    names: tuple[str, ...]

    def server_context(self, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx


def make_tls(tmp: Path, dns_names: tuple[str, ...] = ("check.example",)) -> TLSMaterial:
    """A throwaway CA and a server certificate for `dns_names` (no IP SANs on purpose)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consulpy test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in dns_names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSMaterial(ca_file, cert_file, key_file, dns_names)
