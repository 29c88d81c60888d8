"""`consulpy tls ca create` / `cert create`: Consul's file names, names in the certificates,
key usages, and certificates that chain to the CA."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def tls(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run(
        [sys.executable, "-m", "consulpy", "tls", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName), [
        str(ip) for ip in ext.get_values_for_type(x509.IPAddress)
    ]


def eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ca_and_certificates_as_in_the_getting_started_guide(tmp_path: Path) -> None:
    made = tls(tmp_path, "ca", "create")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        "==> Saved consul-agent-ca.pem",
        "==> Saved consul-agent-ca-key.pem",
    ]
    ca = load(tmp_path / "consul-agent-ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cn(ca) == "Consul Agent CA"
    assert stat.S_IMODE((tmp_path / "consul-agent-ca-key.pem").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(
        (tmp_path / "consul-agent-ca-key.pem").read_bytes(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"

    server = tls(
        tmp_path,
        "cert",
        "create",
        "-server",
        "-node=n1",
        "-additional-dnsname=consul.example.com",
        "-additional-ipaddress=10.0.0.5",
    )
    assert server.returncode == 0, server.stderr
    out = server.stdout.splitlines()
    assert out[0].startswith("==> WARNING")
    assert out[-3:] == [
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem",
        "==> Saved dc1-server-consul-0.pem",
        "==> Saved dc1-server-consul-0-key.pem",
    ]
    cert = load(tmp_path / "dc1-server-consul-0.pem")
    cert.verify_directly_issued_by(ca)
    assert cn(cert) == "server.dc1.consul"
    dns, ips = sans(cert)
    assert set(dns) == {
        "consul.example.com",
        "n1.server.dc1.consul",
        "server.dc1.consul",
        "localhost",
    }
    assert set(ips) == {"10.0.0.5", "127.0.0.1"}
    assert eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # key matches the certificate
    server_key = serialization.load_pem_private_key(
        (tmp_path / "dc1-server-consul-0-key.pem").read_bytes(), None
    )
    assert server_key.public_key() == cert.public_key()

    # the next server certificate takes the next free number
    again = tls(tmp_path, "cert", "create", "-server")
    assert "==> Saved dc1-server-consul-1.pem" in again.stdout

    client = tls(tmp_path, "cert", "create", "-client", "-dc=east", "-days=30")
    assert client.returncode == 0, client.stderr
    assert "==> Saved east-client-consul-0.pem" in client.stdout
    cert = load(tmp_path / "east-client-consul-0.pem")
    cert.verify_directly_issued_by(ca)
    assert cn(cert) == "client.east.consul"
    assert sans(cert) == (["client.east.consul", "localhost"], ["127.0.0.1"])
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.days == 30

    cli = tls(tmp_path, "cert", "create", "-cli")
    assert cli.returncode == 0, cli.stderr
    cert = load(tmp_path / "dc1-cli-consul-0.pem")
    cert.verify_directly_issued_by(ca)
    assert cn(cert) == "cli.dc1.consul"
    assert sans(cert) == (["cli.dc1.consul", "localhost"], [])
    assert eku(cert) == set()


def test_other_domain_and_name_constraints(tmp_path: Path) -> None:
    assert tls(tmp_path, "ca", "create", "-domain=corp", "-name-constraint").returncode == 0
    ca = load(tmp_path / "corp-agent-ca.pem")
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert {n.value for n in constraints.permitted_subtrees or []} == {"corp", "localhost"}
    made = tls(tmp_path, "cert", "create", "-server", "-domain=corp")
    assert made.returncode == 0, made.stderr
    cert = load(tmp_path / "dc1-server-corp-0.pem")
    cert.verify_directly_issued_by(ca)
    assert "server.dc1.corp" in sans(cert)[0]


def test_mistakes_are_refused_with_a_reason(tmp_path: Path) -> None:
    none = tls(tmp_path, "cert", "create")
    assert none.returncode == 1
    assert "Please provide either -server, -client, or -cli" in none.stderr
    two = tls(tmp_path, "cert", "create", "-server", "-client")
    assert two.returncode == 1 and "Please provide either" in two.stderr
    no_ca = tls(tmp_path, "cert", "create", "-client")
    assert no_ca.returncode == 1 and "consul-agent-ca.pem" in no_ca.stderr
    assert not list(tmp_path.glob("dc1-*"))

    assert tls(tmp_path, "ca", "create").returncode == 0
    exists = tls(tmp_path, "ca", "create")
    assert exists.returncode == 1
    assert "consul-agent-ca.pem already exists." in exists.stderr
    node = tls(tmp_path, "cert", "create", "-client", "-node=n1")
    assert node.returncode == 1 and "-node" in node.stderr
    bad_ip = tls(tmp_path, "cert", "create", "-server", "-additional-ipaddress=nope")
    assert bad_ip.returncode == 1 and "-additional-ipaddress" in bad_ip.stderr
    assert not list(tmp_path.glob("dc1-*"))
