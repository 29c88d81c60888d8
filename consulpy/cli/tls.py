"""`consulpy tls ca create` and `consulpy tls cert create`: the agent CA and the certificates
of servers, clients and CLI users, with Consul's file names and names in the certificates, so
the getting-started TLS steps work as written (ECDSA P-256 keys, SHA-256 signatures).

Files land in the current directory: `<domain>-agent-ca.pem` and `<domain>-agent-ca-key.pem`,
then `<dc>-<kind>-<domain>-<n>.pem` and `...-<n>-key.pem` with the first free `<n>`. Nothing is
overwritten: an existing CA file is an error, and certificates take the next free number.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USAGE = """Usage: consulpy tls <subcommand> <subcommand> [options]

    consulpy tls ca create [-days 1825] [-domain consul]
    consulpy tls cert create -server|-client|-cli [-dc dc1] [-domain consul] [-days 365]"""

_MAX_INDEX = 10000


def _parser(prog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, allow_abbrev=False)


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: object) -> None:
    """Go-style flags: -name and --name, value as the next word or after '='."""
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)  # type: ignore[arg-type]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (never overwrite) with `mode`, then say so as Consul does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    print(f"==> Saved {path}")


def _ski(key: ec.EllipticCurvePrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


# ---------------------------------------------------------------- ca create
def ca_create(argv: list[str]) -> int:
    parser = _parser("consulpy tls ca create")
    _flag(parser, "days", type=int, default=1825, help="days the CA is valid (1825)")
    _flag(parser, "domain", default="consul", help="the cluster's DNS domain (consul)")
    _flag(
        parser,
        "name-constraint",
        action="store_true",
        help="limit the CA to the domain, localhost and -additional-name-constraint",
    )
    _flag(parser, "additional-name-constraint", action="append", default=[])
    _flag(parser, "cluster-id", default="", help="adds a SPIFFE URI SAN for the cluster")
    _flag(parser, "common-name", default="", help="CN of the CA (Consul Agent CA)")
    args = parser.parse_args(argv)
    if args.days <= 0:
        return _fail("-days must be a positive number of days")
    domain = args.domain.strip(".")
    cert_path = Path(f"{domain}-agent-ca.pem")
    key_path = Path(f"{domain}-agent-ca-key.pem")
    for path in (cert_path, key_path):
        if path.exists():
            return _fail(f"{path} already exists.")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, args.common_name or "Consul Agent CA")]
    )
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=args.days))
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
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    if args.cluster_id:
        uri = f"spiffe://{args.cluster_id}.{domain}"
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    if args.name_constraint:
        permitted = [domain, "localhost", *args.additional_name_constraint]
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(d) for d in permitted], excluded_subtrees=None
            ),
            critical=True,
        )
    cert = builder.sign(key, hashes.SHA256())
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(key_path, _key_pem(key), 0o600)
    return 0


# -------------------------------------------------------------- cert create
_SERVER_WARNING = """==> WARNING: a server certificate lets its holder act as a server of this
    datacenter and read everything the servers hold, root keys and ACL tokens
    included. Keep it on server hosts only and guard it like the CA key."""


def cert_create(argv: list[str]) -> int:
    parser = _parser("consulpy tls cert create")
    for kind in ("server", "client", "cli"):
        _flag(parser, kind, action="store_true", help=f"a {kind} certificate")
    _flag(parser, "dc", default="dc1", help="datacenter (dc1)")
    _flag(parser, "domain", default="consul", help="the cluster's DNS domain (consul)")
    _flag(parser, "days", type=int, default=365, help="days the certificate is valid (365)")
    _flag(parser, "node", default="", help="adds <node>.server.<dc>.<domain> (with -server)")
    _flag(parser, "additional-dnsname", action="append", default=[])
    _flag(parser, "additional-ipaddress", action="append", default=[])
    _flag(parser, "ca", default="#DOMAIN#-agent-ca.pem", help="the CA certificate")
    _flag(parser, "key", default="#DOMAIN#-agent-ca-key.pem", help="the CA key")
    args = parser.parse_args(argv)
    kinds = [k for k in ("server", "client", "cli") if getattr(args, k)]
    if len(kinds) != 1:
        return _fail("Please provide either -server, -client, or -cli")
    kind = kinds[0]
    if args.node and kind != "server":
        return _fail("-node requires -server")
    if args.days <= 0:
        return _fail("-days must be a positive number of days")
    domain = args.domain.strip(".")
    try:
        extra_ips = [ipaddress.ip_address(ip) for ip in args.additional_ipaddress]
    except ValueError as exc:
        return _fail(f"-additional-ipaddress: {exc}")
    ca_path = Path(args.ca.replace("#DOMAIN#", domain))
    ca_key_path = Path(args.key.replace("#DOMAIN#", domain))
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        return _fail(f"Error reading the CA ({ca_path}, {ca_key_path}): {exc}")
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        return _fail(f"{ca_key_path}: the CA key must be an ECDSA key")

    cn = f"{kind}.{args.dc}.{domain}"
    dns: list[str]
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address]
    eku: list[x509.ObjectIdentifier] = []
    if kind == "server":
        node = [f"{args.node}.server.{args.dc}.{domain}"] if args.node else []
        dns = [*args.additional_dnsname, *node, cn, "localhost"]
        ips = [*extra_ips, ipaddress.ip_address("127.0.0.1")]
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    elif kind == "client":
        dns = [*args.additional_dnsname, cn, "localhost"]
        ips = [*extra_ips, ipaddress.ip_address("127.0.0.1")]
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    else:
        dns = [cn, "localhost"]
        ips = []

    prefix = f"{args.dc}-{kind}-{domain}"
    index = next(
        (
            n
            for n in range(_MAX_INDEX + 1)
            if not Path(f"{prefix}-{n}.pem").exists() and not Path(f"{prefix}-{n}-key.pem").exists()
        ),
        None,
    )
    if index is None:
        return _fail(f"no free file name for {prefix}-<n>.pem (0..{_MAX_INDEX} exist)")
    cert_path = Path(f"{prefix}-{index}.pem")
    key_path = Path(f"{prefix}-{index}-key.pem")

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns)]
    sans += [x509.IPAddress(ip) for ip in dict.fromkeys(ips)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=args.days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    if kind == "server":
        print(_SERVER_WARNING)
    print(f"==> Using {ca_path} and {ca_key_path}")
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(key_path, _key_pem(key), 0o600)
    return 0


def _fail(message: str) -> int:
    print(f"==> {message}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    commands = {("ca", "create"): ca_create, ("cert", "create"): cert_create}
    func = commands.get(tuple(argv[:2]))  # type: ignore[call-overload]
    if func is None:
        print(USAGE, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["-help"], ["--help"]) else 1
    return int(func(argv[2:]))
