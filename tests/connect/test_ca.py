"""The built-in Connect CA (consulpy.connect.ca): config, root and leaf profiles, CSR checks,
rotation with cross-signing, pruning, BYO keys and roots, and chain verification (both by
`cryptography`'s verifier and by a real OpenSSL TLS handshake)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    NameOID,
    SignatureAlgorithmOID,
)

from consulpy.connect import ca, spiffe

CLUSTER = "5f1b2c3d-aaaa-bbbb-cccc-0123456789ab"
TD = spiffe.trust_domain(CLUSTER)
DC = "dc1"
NOW = 1_750_000_000.0  # a fixed instant: every validity check below is relative to it
HOUR = 3600.0
LEAF_TTL = 72 * HOUR
WEB_URI = spiffe.service_uri(TD, DC, "web")

# ------------------------------------------------------------------------------------------
# Helpers and module-wide fixtures (RSA key generation is slow: once per module).


def cert_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def chain_of(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def spki_sha256(public_key: Any) -> bytes:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def sec1(key: Any) -> str:
    """A private key as "EC/RSA PRIVATE KEY" PEM, the form Consul users paste as PrivateKey."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def ext(cert: x509.Certificate, cls: type) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(cls)


def at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def make_root(config: dict[str, Any] | None = None, *, serial: int = 1, now: float = NOW) -> dict:
    cfg = ca.normalize_config("consul", config or {}, cluster_id=CLUSTER)
    return ca.generate_root(CLUSTER, cfg, serial=serial, now=now)


def sign(root: dict, csr: str, *, serial: int = 10, now: float = NOW, ttl: float = LEAF_TTL):
    return ca.sign_leaf(
        root, csr, trust_domain=TD, datacenter=DC, leaf_ttl_s=ttl, serial=serial, now=now
    )


def custom_csr(names: list[x509.GeneralName] | None, *, key: Any = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def empty_san_csr(*, critical: bool) -> str:
    """A CSR whose SAN extension lists no names (newer `cryptography` cannot build one directly)."""
    key = ec.generate_private_key(ec.SECP256R1())
    empty = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x00")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(empty, critical=critical)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def verify_manual(chain: str, roots: list[str], *, now: float) -> str:
    return ca.verify_leaf(chain, roots, now=now, manual=True)


def verify_webpki(chain: str, roots: list[str], *, now: float) -> str:
    return ca.verify_leaf(chain, roots, now=now, manual=False)


VERIFIERS: list[Callable[..., str]] = [verify_webpki, verify_manual]


@pytest.fixture(scope="module")
def ec_root() -> dict:
    return make_root()


@pytest.fixture(scope="module")
def rsa_root() -> dict:
    return make_root({"PrivateKeyType": "rsa", "PrivateKeyBits": 2048}, serial=2)


@pytest.fixture(scope="module")
def web_csr() -> tuple[str, str]:
    return ca.make_csr(WEB_URI)


# ------------------------------------------------------------------------------------------
# Configuration.


def test_default_config() -> None:
    assert ca.normalize_config("consul", {}) == {
        "Provider": "consul",
        "Config": {
            "LeafCertTTL": "72h",
            "IntermediateCertTTL": "8760h",
            "RootCertTTL": "87600h",
            "PrivateKeyType": "ec",
            "PrivateKeyBits": 256,
            "CSRMaxPerSecond": 50,
            "CSRMaxConcurrent": 0,
        },
    }
    assert ca.normalize_config("consul", None)["Config"]["LeafCertTTL"] == "72h"


def test_config_spellings_numbers_and_legacy_keys() -> None:
    cfg = ca.normalize_config(
        "consul",
        {
            "leaf_cert_ttl": "24h",
            "IntermediateCertTTL": 100 * 3600 * 10**9,  # nanoseconds, as a JSON number
            "root_cert_ttl": "1000h",
            "private_key_type": "ec",
            "PrivateKeyBits": "384",
            "csr_max_per_second": 12.5,
            "CSRMaxConcurrent": 4.0,
            "RotationPeriod": "2160h",
            "Address": "http://vault:8200",  # another provider's key: ignored like Consul does
        },
    )["Config"]
    assert cfg == {
        "LeafCertTTL": "24h",
        "IntermediateCertTTL": "100h0m0s",
        "RootCertTTL": "1000h",
        "PrivateKeyType": "ec",
        "PrivateKeyBits": 384,
        "CSRMaxPerSecond": 12.5,
        "CSRMaxConcurrent": 4,
    }
    assert ca.leaf_cert_ttl({"Provider": "consul", "Config": cfg}) == 24 * HOUR
    assert ca.normalize_config("consul", cfg)["Config"] == cfg  # idempotent
    assert msgpack.unpackb(msgpack.packb(cfg)) == cfg


def test_rsa_defaults_to_2048_bits() -> None:
    cfg = ca.normalize_config("consul", {"PrivateKeyType": "rsa"})["Config"]
    assert cfg["PrivateKeyBits"] == 2048


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"LeafCertTTL": "30m"}, "leaf cert TTL must be greater or equal than 1h0m0s"),
        ({"LeafCertTTL": "8761h"}, "leaf cert TTL must be less than 8760h0m0s"),
        (
            {"LeafCertTTL": "1h", "IntermediateCertTTL": "2h"},
            "Intermediate Cert TTL must be greater or equal than 3h",
        ),
        (
            {"LeafCertTTL": "24h", "IntermediateCertTTL": "48h"},
            "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL (>=72h0m0s).",
        ),
        (
            {"LeafCertTTL": "1h", "IntermediateCertTTL": "4h", "RootCertTTL": "3h"},
            "root cert TTL is set and is not greater than intermediate cert ttl. "
            "root cert ttl: 3h0m0s, intermediate cert ttl: 4h0m0s",
        ),
        ({"PrivateKeyBits": 300}, "EC key length must be one of (224, 256, 384, 521) bits"),
        (
            {"PrivateKeyType": "rsa", "PrivateKeyBits": 1024},
            "RSA key length must be 2048 or 4096 bits",
        ),
        ({"PrivateKeyType": "dsa"}, "private key type must be either 'ec' or 'rsa'"),
        ({"LeafCertTTL": "soon"}, "time: invalid duration"),
        ({"LeafCertTTL": True}, "error decoding config: 'LeafCertTTL'"),
        ({"PrivateKeyBits": "lots"}, "error decoding config: 'PrivateKeyBits'"),
        ({"PrivateKeyBits": 256.5}, "expected an integer"),
        ({"CSRMaxPerSecond": -1}, "must not be negative"),
        ({"RootCert": "-----BEGIN CERTIFICATE-----"}, "must provide a private key"),
        ({"PrivateKey": "not a key"}, "error parsing PrivateKey"),
        ({"LeafCertTTL": "24h", "leaf_cert_ttl": "48h"}, "given twice"),
    ],
)
def test_config_validation(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ca.CAError, match=re.escape(message)):
        ca.normalize_config("consul", config)


def test_unknown_provider_is_refused_clearly() -> None:
    with pytest.raises(ca.CAError, match=r'unknown CA provider "vault".*only.*"consul"'):
        ca.normalize_config("vault", {"Address": "http://127.0.0.1:8200"})
    with pytest.raises(ca.CAError, match="must be specified"):
        ca.normalize_config("", {})


def test_needs_new_root() -> None:
    base = ca.normalize_config("consul", {})
    ttl_change = ca.normalize_config("consul", {"LeafCertTTL": "24h", "CSRMaxPerSecond": 5})
    assert ca.needs_new_root(None, base)
    assert not ca.needs_new_root(base, base)
    assert not ca.needs_new_root(base, ttl_change)
    assert ca.needs_new_root(base, ca.normalize_config("consul", {"PrivateKeyBits": 384}))
    assert ca.needs_new_root(base, ca.normalize_config("consul", {"PrivateKeyType": "rsa"}))
    key_pem = sec1(ec.generate_private_key(ec.SECP256R1()))
    byo = ca.normalize_config("consul", {"PrivateKey": key_pem})
    assert ca.needs_new_root(base, byo)
    assert ca.needs_new_root(byo, base)
    # With a BYO key the generation parameters are unused, so changing them rotates nothing.
    byo_bits = ca.normalize_config("consul", {"PrivateKey": key_pem, "PrivateKeyBits": 384})
    assert not ca.needs_new_root(byo, byo_bits)


def test_existing_private_key_survives_a_round_trip_that_omits_it() -> None:
    key_pem = sec1(ec.generate_private_key(ec.SECP256R1()))
    stored = ca.normalize_config("consul", {"PrivateKey": key_pem})
    edited = ca.normalize_config("consul", {"LeafCertTTL": "24h"}, existing=stored)
    assert edited["Config"]["PrivateKey"] == key_pem
    assert not ca.needs_new_root(stored, edited)
    cleared = ca.normalize_config("consul", {"PrivateKey": ""}, existing=stored)
    assert "PrivateKey" not in cleared["Config"]
    assert ca.needs_new_root(stored, cleared)


# ------------------------------------------------------------------------------------------
# Root profile.


def test_root_fields_and_profile(ec_root: dict) -> None:
    root = ec_root
    cert = cert_of(root["RootCert"])
    assert root["RootCert"].endswith("-----END CERTIFICATE-----\n")
    assert root["ID"] == ":".join(
        f"{b:02x}" for b in hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
    )
    assert len(root["ID"].split(":")) == 20
    assert root["Name"] == "Consul CA Primary Cert"
    assert root["SerialNumber"] == cert.serial_number == 1
    assert root["ExternalTrustDomain"] == CLUSTER
    assert root["IntermediateCerts"] is None
    assert root["Active"] is True
    assert (root["PrivateKeyType"], root["PrivateKeyBits"]) == ("ec", 256)
    assert root["SigningKey"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert root["SigningCert"] == root["RootCert"]
    assert root["NotBefore"] == "2025-06-15T15:06:40Z" == ca.rfc3339(at(NOW))
    assert cert.not_valid_before_utc == at(NOW)
    assert cert.not_valid_after_utc == at(NOW) + dt.timedelta(hours=87600)
    assert root["NotAfter"] == ca.rfc3339(cert.not_valid_after_utc)

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert re.fullmatch(rf"pri-[0-9a-z]{{8}}\.consul\.ca\.{CLUSTER[:8]}\.consul", cn)
    assert cert.issuer == cert.subject
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://{TD}"]
    assert list(san.value) == [x509.UniformResourceIdentifier(f"spiffe://{TD}")]
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length is None
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign and ku.value.digital_signature
    assert not (ku.value.key_encipherment or ku.value.data_encipherment)
    kid = spki_sha256(cert.public_key())
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest == kid
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == kid
    assert root["SigningKeyID"] == ":".join(f"{b:02x}" for b in kid)
    assert len(kid) == 32
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"


def test_public_root_hides_private_parts_and_everything_is_msgpack(ec_root: dict) -> None:
    public = ca.public_root(ca.deactivate(ec_root, NOW + 5))
    assert "SigningKey" not in public and "SigningCert" not in public
    assert "RotatedOutAt" not in public
    assert public["Active"] is False
    assert set(public) == {
        "ID", "Name", "SerialNumber", "SigningKeyID", "ExternalTrustDomain", "NotBefore",
        "NotAfter", "RootCert", "IntermediateCerts", "Active", "PrivateKeyType",
        "PrivateKeyBits",
    }  # fmt: skip
    assert msgpack.unpackb(msgpack.packb(ec_root)) == ec_root


def test_rsa_root_profile(rsa_root: dict) -> None:
    cert = cert_of(rsa_root["RootCert"])
    assert (rsa_root["PrivateKeyType"], rsa_root["PrivateKeyBits"]) == ("rsa", 2048)
    assert rsa_root["SigningKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert rsa_root["SigningKeyID"] == ":".join(f"{b:02x}" for b in spki_sha256(cert.public_key()))


@pytest.mark.parametrize("bits", [384, 521])
def test_other_ec_curves(bits: int, web_csr: tuple[str, str]) -> None:
    root = make_root({"PrivateKeyBits": bits})
    assert root["PrivateKeyBits"] == bits
    leaf = sign(root, web_csr[1])
    for verify in VERIFIERS:
        assert verify(leaf["CertPEM"], [root["RootCert"]], now=NOW) == WEB_URI


def test_p224_root_is_verified_by_the_own_path_builder(web_csr: tuple[str, str]) -> None:
    root = make_root({"PrivateKeyBits": 224})
    assert cert_of(root["RootCert"]).public_key().curve.name == "secp224r1"
    leaf = sign(root, web_csr[1])
    # The Web PKI verifier refuses P-224 outright; the automatic choice still verifies.
    with pytest.raises(ca.CAError):
        verify_webpki(leaf["CertPEM"], [root["RootCert"]], now=NOW)
    assert ca.verify_leaf(leaf["CertPEM"], [root["RootCert"]], now=NOW) == WEB_URI
    stranger = make_root({"PrivateKeyBits": 224})
    with pytest.raises(ca.CAError, match="no valid chain"):
        ca.verify_leaf(leaf["CertPEM"], [stranger["RootCert"]], now=NOW)


# ------------------------------------------------------------------------------------------
# Leaves.


def test_make_csr(web_csr: tuple[str, str]) -> None:
    key_pem, csr_pem = web_csr
    assert key_pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject == x509.Name([])
    assert ext(csr, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    ) == [WEB_URI]
    assert spki_sha256(csr.public_key()) == spki_sha256(key.public_key())


def test_leaf_profile(ec_root: dict, web_csr: tuple[str, str]) -> None:
    key_pem, csr_pem = web_csr
    leaf = sign(ec_root, csr_pem, serial=0x1F0A)
    assert leaf["SerialNumber"] == "1f:0a"
    assert leaf["Service"] == "web"
    assert leaf["ServiceURI"] == WEB_URI
    (cert,) = chain_of(leaf["CertPEM"])  # a fresh root has no intermediates to append
    assert cert.serial_number == 0x1F0A
    assert cert.subject == x509.Name([])
    assert cert.issuer == cert_of(ec_root["RootCert"]).subject
    san = ext(cert, x509.SubjectAlternativeName)
    assert san.critical
    assert list(san.value) == [x509.UniformResourceIdentifier(WEB_URI)]
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.key_encipherment
    assert ku.value.key_agreement and ku.value.data_encipherment
    assert not (ku.value.key_cert_sign or ku.value.crl_sign)
    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    leaf_key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest == spki_sha256(leaf_key.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == spki_sha256(
        cert_of(ec_root["RootCert"]).public_key()
    )
    assert cert.not_valid_before_utc == at(NOW - 60)
    assert cert.not_valid_after_utc == at(NOW - 60 + LEAF_TTL)
    assert leaf["ValidAfter"] == ca.rfc3339(at(NOW - 60))
    assert leaf["ValidBefore"] == ca.rfc3339(at(NOW - 60 + LEAF_TTL))
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    info = ca.leaf_info(leaf["CertPEM"])
    assert info["AuthorityKeyID"] == ec_root["SigningKeyID"]
    assert info["URI"] == WEB_URI and info["SerialNumber"] == "1f:0a"
    assert msgpack.unpackb(msgpack.packb(leaf)) == leaf


@pytest.mark.parametrize("verify", VERIFIERS)
def test_leaf_verifies_against_its_root_only_while_valid(
    verify: Callable[..., str], ec_root: dict, rsa_root: dict, web_csr: tuple[str, str]
) -> None:
    issued = NOW + HOUR  # the root itself is valid from NOW on
    leaf = sign(ec_root, web_csr[1], now=issued)
    roots = [ec_root["RootCert"]]
    assert verify(leaf["CertPEM"], roots, now=issued) == WEB_URI
    assert verify(leaf["CertPEM"], roots, now=issued - 60) == WEB_URI
    assert verify(leaf["CertPEM"], roots, now=issued - 60 + LEAF_TTL) == WEB_URI
    for when in (issued - 61, issued - 60 + LEAF_TTL + 1):
        with pytest.raises(ca.CAError):
            verify(leaf["CertPEM"], roots, now=when)
    with pytest.raises(ca.CAError):
        verify(leaf["CertPEM"], [rsa_root["RootCert"]], now=issued)
    # Trusting several roots is fine; the bundle form (?pem=true) works as a trust list too.
    bundle = ca.pem_bundle([rsa_root, ec_root])
    assert verify(leaf["CertPEM"], [bundle], now=issued) == WEB_URI


def test_rsa_root_signs_ec_leaves(rsa_root: dict, web_csr: tuple[str, str]) -> None:
    leaf = sign(rsa_root, web_csr[1])
    cert = chain_of(leaf["CertPEM"])[0]
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    for verify in VERIFIERS:
        assert verify(leaf["CertPEM"], [rsa_root["RootCert"]], now=NOW) == WEB_URI


def test_dns_and_ip_sans_are_copied_when_asked_for(ec_root: dict) -> None:
    uri = spiffe.service_uri(TD, DC, "ingress")
    _, csr = ca.make_csr(uri, dns_names=["ingress.example"], ip_addresses=["127.0.0.9"])
    cert = chain_of(sign(ec_root, csr)["CertPEM"])[0]
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    assert san.get_values_for_type(x509.DNSName) == ["ingress.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.9"]


def test_encode_serial() -> None:
    assert ca.encode_serial(8) == "08"
    assert ca.encode_serial(255) == "ff"
    assert ca.encode_serial(256) == "01:00"
    assert ca.encode_serial(0x1F0A) == "1f:0a"


def _tampered_csr() -> str:
    _, pem = ca.make_csr(WEB_URI)
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ca.make_csr(spiffe.service_uri("other-cluster.consul", DC, "web"))[1],
            f"SPIFFE ID in CSR from a different trust domain: other-cluster.consul, we are {TD}",
        ),
        (
            lambda: ca.make_csr(spiffe.service_uri(TD, "dc2", "web"))[1],
            "SPIFFE ID in CSR from a different datacenter: dc2, we are dc1",
        ),
        (
            lambda: custom_csr(
                [
                    x509.UniformResourceIdentifier(WEB_URI),
                    x509.UniformResourceIdentifier(spiffe.service_uri(TD, DC, "db")),
                ]
            ),
            "CSR SAN contains an invalid number of URIs: 2",
        ),
        (lambda: custom_csr(None), "CSR SAN contains an invalid number of URIs: 0"),
        (lambda: empty_san_csr(critical=False), "CSR SAN contains an invalid number of URIs: 0"),
        (lambda: empty_san_csr(critical=True), "CSR SAN contains an invalid number of URIs: 0"),
        (
            lambda: custom_csr([x509.DNSName("web.example.com")]),
            "CSR SAN contains an invalid number of URIs: 0",
        ),
        (
            lambda: custom_csr(
                [x509.UniformResourceIdentifier(WEB_URI), x509.RFC822Name("a@example.com")]
            ),
            "CSR SAN does not allow specifying email addresses",
        ),
        (
            lambda: ca.make_csr(spiffe.agent_uri(TD, DC, "node-1"))[1],
            "SPIFFE ID in CSR must be a service ID",
        ),
        (lambda: ca.make_csr(f"spiffe://{TD}")[1], "SPIFFE ID in CSR must be a service ID"),
        (
            lambda: ca.make_csr("https://example.com/svc/web")[1],
            "SPIFFE ID must have 'spiffe' scheme",
        ),
        (lambda: "hello", "no PEM-encoded data found"),
        (
            lambda: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
            "error parsing CSR",
        ),
        (
            lambda: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "PEM block is not a CERTIFICATE REQUEST",
        ),
        (_tampered_csr, "CSR signature is invalid"),
    ],
)
def test_csr_checks(ec_root: dict, make: Callable[[], str], message: str) -> None:
    with pytest.raises(ca.CAError, match=re.escape(message)):
        sign(ec_root, make())


def test_sign_refuses_an_expired_root_and_bad_arguments(web_csr: tuple[str, str]) -> None:
    root = make_root({"LeafCertTTL": "1h", "IntermediateCertTTL": "3h", "RootCertTTL": "3h"})
    with pytest.raises(ca.CAError, match="root expired"):
        sign(root, web_csr[1], now=NOW + 3 * HOUR + 1)
    with pytest.raises(ca.CAError, match="serial number"):
        sign(root, web_csr[1], serial=0)
    with pytest.raises(ca.CAError, match="leaf TTL"):
        sign(root, web_csr[1], ttl=0)
    with pytest.raises(ca.CAError, match="no signing key"):
        sign(ca.public_root(root), web_csr[1])


def test_verify_leaf_rejects_garbage_and_ca_certs(ec_root: dict) -> None:
    with pytest.raises(ca.CAError, match="no PEM-encoded certificate"):
        ca.verify_leaf("garbage", [ec_root["RootCert"]], now=NOW)
    # A root is not a leaf: it carries the signing URI but is a CA.
    for verify in VERIFIERS:
        with pytest.raises(ca.CAError):
            verify(ec_root["RootCert"], [ec_root["RootCert"]], now=NOW)


def _issue(
    issuer_key: Any,
    issuer_name: x509.Name,
    key: Any,
    name: x509.Name,
    *,
    ca_flag: bool,
    path_length: int | None = None,
    uri: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at(NOW - 3600))
        .not_valid_after(at(NOW + 3600))
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, ca_flag, ca_flag, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if not ca_flag:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    if uri:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pems(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@pytest.mark.parametrize("verify", VERIFIERS)
def test_chains_through_non_ca_or_beyond_path_length_are_refused(
    verify: Callable[..., str], ec_root: dict
) -> None:
    root_cert = cert_of(ec_root["RootCert"])
    root_key = serialization.load_pem_private_key(ec_root["SigningKey"].encode(), None)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    # A non-CA certificate may not issue.
    mid = _issue(root_key, root_cert.subject, keys[0], name("mid"), ca_flag=False, uri=WEB_URI)
    leaf = _issue(keys[0], name("mid"), keys[1], name("leaf"), ca_flag=False, uri=WEB_URI)
    with pytest.raises(ca.CAError):
        verify(_pems(leaf, mid), [ec_root["RootCert"]], now=NOW)
    # A CA with path length 0 may not have another CA under it.
    top = _issue(root_key, root_cert.subject, keys[0], name("top"), ca_flag=True, path_length=0)
    low = _issue(keys[0], name("top"), keys[1], name("low"), ca_flag=True)
    leaf = _issue(keys[1], name("low"), keys[2], name("leaf"), ca_flag=False, uri=WEB_URI)
    with pytest.raises(ca.CAError):
        verify(_pems(leaf, low, top), [ec_root["RootCert"]], now=NOW)
    # The same shape with room in the path length is accepted (so the refusal above is the
    # path length and nothing else).
    top = _issue(root_key, root_cert.subject, keys[0], name("top"), ca_flag=True, path_length=1)
    low = _issue(keys[0], name("top"), keys[1], name("low"), ca_flag=True, path_length=0)
    assert verify(_pems(leaf, low, top), [ec_root["RootCert"]], now=NOW) == WEB_URI


# ------------------------------------------------------------------------------------------
# Rotation.


@pytest.fixture(scope="module")
def rotation(ec_root: dict, rsa_root: dict) -> dict[str, Any]:
    """EC root -> RSA root at NOW + 1h (different key types on purpose)."""
    rotated_at = NOW + HOUR
    roots = ca.rotate([ec_root], rsa_root, serial=50, now=rotated_at)
    return {"old": roots[0], "new": roots[1], "roots": roots, "at": rotated_at}


def test_rotate_marks_old_inactive_and_cross_signs(rotation: dict[str, Any]) -> None:
    old, new, rotated_at = rotation["old"], rotation["new"], rotation["at"]
    assert old["Active"] is False and new["Active"] is True
    assert old["RotatedOutAt"] == ca.rfc3339(at(rotated_at))
    assert len(new["IntermediateCerts"]) == 1
    xc = cert_of(new["IntermediateCerts"][0])
    old_cert, new_cert = cert_of(old["RootCert"]), cert_of(new["RootCert"])
    assert xc.serial_number == 50
    assert xc.subject == new_cert.subject
    assert xc.issuer == old_cert.subject
    assert spki_sha256(xc.public_key()) == spki_sha256(new_cert.public_key())
    assert xc.not_valid_before_utc == at(rotated_at - 60)
    assert xc.not_valid_after_utc == at(rotated_at - 60) + dt.timedelta(days=7)
    bc = ext(xc, x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert ext(xc, x509.KeyUsage).value.key_cert_sign
    assert ext(xc, x509.SubjectKeyIdentifier).value.digest == spki_sha256(new_cert.public_key())
    assert ext(xc, x509.AuthorityKeyIdentifier).value.key_identifier == spki_sha256(
        old_cert.public_key()
    )
    assert ext(xc, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    ) == [f"spiffe://{TD}"]
    assert xc.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256  # old key
    # The bundle lists each root followed by its intermediates.
    bundle = chain_of(ca.pem_bundle(rotation["roots"]))
    assert [c.serial_number for c in bundle] == [1, 2, 50]


@pytest.mark.parametrize("verify", VERIFIERS)
def test_new_leaves_verify_for_peers_trusting_old_or_new_root(
    verify: Callable[..., str], rotation: dict[str, Any], web_csr: tuple[str, str]
) -> None:
    old, new = rotation["old"], rotation["new"]
    when = rotation["at"] + 60
    leaf = sign(new, web_csr[1], serial=51, now=when)
    chain = chain_of(leaf["CertPEM"])
    assert len(chain) == 2
    assert chain[1] == cert_of(new["IntermediateCerts"][0])
    assert verify(leaf["CertPEM"], [old["RootCert"]], now=when) == WEB_URI
    assert verify(leaf["CertPEM"], [new["RootCert"]], now=when) == WEB_URI
    assert verify(leaf["CertPEM"], [old["RootCert"], new["RootCert"]], now=when) == WEB_URI
    # Once the cross-signed cert lapses (7 days) only the new root vouches for new leaves.
    late = rotation["at"] + 7 * 24 * HOUR
    later_leaf = sign(new, web_csr[1], serial=52, now=late)
    assert verify(later_leaf["CertPEM"], [new["RootCert"]], now=late) == WEB_URI
    with pytest.raises(ca.CAError):
        verify(later_leaf["CertPEM"], [old["RootCert"]], now=late)


@pytest.mark.parametrize("verify", VERIFIERS)
def test_old_leaves_keep_verifying_during_the_overlap(
    verify: Callable[..., str], rotation: dict[str, Any], ec_root: dict, web_csr: tuple[str, str]
) -> None:
    old_leaf = sign(ec_root, web_csr[1], serial=20, now=NOW)
    trusted = [r["RootCert"] for r in rotation["roots"]]
    for when in (rotation["at"] + 60, NOW - 60 + LEAF_TTL):
        assert verify(old_leaf["CertPEM"], trusted, now=when) == WEB_URI
        assert verify(old_leaf["CertPEM"], [rotation["old"]["RootCert"]], now=when) == WEB_URI
    # The new root alone never vouched for leaves of the old one.
    with pytest.raises(ca.CAError):
        verify(old_leaf["CertPEM"], [rotation["new"]["RootCert"]], now=rotation["at"] + 60)


def test_rotation_without_cross_signing(ec_root: dict, web_csr: tuple[str, str]) -> None:
    new_root = make_root(serial=60, now=NOW + HOUR)
    roots = ca.rotate([ec_root], new_root, serial=61, now=NOW + HOUR, cross_signed=False)
    assert roots[1]["IntermediateCerts"] is None
    leaf = sign(roots[1], web_csr[1], serial=62, now=NOW + HOUR)
    assert ca.verify_leaf(leaf["CertPEM"], [new_root["RootCert"]], now=NOW + HOUR) == WEB_URI
    with pytest.raises(ca.CAError):
        ca.verify_leaf(leaf["CertPEM"], [ec_root["RootCert"]], now=NOW + HOUR)


def test_rotating_to_the_active_root_changes_nothing(ec_root: dict) -> None:
    assert ca.rotate([ec_root], ec_root, serial=70, now=NOW) == [ec_root]


def test_second_rotation_keeps_one_active_root(rotation: dict[str, Any]) -> None:
    third = make_root(serial=80, now=rotation["at"] + HOUR)
    roots = ca.rotate(rotation["roots"], third, serial=81, now=rotation["at"] + HOUR)
    assert [r["Active"] for r in roots] == [False, False, True]
    assert roots[0]["RotatedOutAt"] == rotation["old"]["RotatedOutAt"]  # not re-stamped
    assert roots[1]["RotatedOutAt"] == ca.rfc3339(at(rotation["at"] + HOUR))
    xc = cert_of(roots[2]["IntermediateCerts"][0])
    assert xc.issuer == cert_of(rotation["new"]["RootCert"]).subject


def test_prune_roots(rotation: dict[str, Any]) -> None:
    roots = rotation["roots"]
    limit = rotation["at"] + 2 * LEAF_TTL
    assert ca.prune_roots(roots, leaf_ttl_s=LEAF_TTL, now=limit) == roots
    pruned = ca.prune_roots(roots, leaf_ttl_s=LEAF_TTL, now=limit + 1)
    assert pruned == [rotation["new"]]
    # The active root is never pruned; a root with no RotatedOutAt is kept.
    assert ca.prune_roots([rotation["new"]], leaf_ttl_s=HOUR, now=NOW + 10**9) == [rotation["new"]]
    unstamped = dict(rotation["old"])
    del unstamped["RotatedOutAt"]
    assert ca.prune_roots([unstamped], leaf_ttl_s=HOUR, now=NOW + 10**9) == [unstamped]


# ------------------------------------------------------------------------------------------
# Bring your own key / root.


def _byo_root_cert(key: Any, uri: str | None, *, ca_flag: bool = True, days: int = 365) -> str:
    """A self-signed root; ``uri=None`` gives it a SAN extension that lists no names."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "My Org Connect Root")])
    san: x509.ExtensionType = (
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)])
        if uri is not None
        else x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x00")
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x0123456789ABCDEF0123456789)  # 100 bits, as real CAs like to use
        .not_valid_before(at(NOW - 86400))
        .not_valid_after(at(NOW) + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, ca_flag, ca_flag, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(san, False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_byo_private_key_only() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    root = make_root({"PrivateKey": sec1(key)})
    cert = cert_of(root["RootCert"])
    assert spki_sha256(cert.public_key()) == spki_sha256(key.public_key())
    # Type and size come from the key itself, not from the (default) generation settings.
    assert (root["PrivateKeyType"], root["PrivateKeyBits"]) == ("ec", 384)
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    ) == [f"spiffe://{TD}"]


def test_byo_pkcs8_rsa_key(rsa_root: dict) -> None:
    key = serialization.load_pem_private_key(rsa_root["SigningKey"].encode(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert pkcs8.startswith("-----BEGIN PRIVATE KEY-----")
    root = make_root({"PrivateKey": pkcs8})
    assert (root["PrivateKeyType"], root["PrivateKeyBits"]) == ("rsa", 2048)


@pytest.mark.parametrize("verify", VERIFIERS)
def test_byo_key_and_root(verify: Callable[..., str], web_csr: tuple[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    root_pem = _byo_root_cert(key, f"spiffe://{TD}")
    root = make_root({"PrivateKey": sec1(key), "RootCert": root_pem})
    assert root["RootCert"] == root_pem
    assert root["ID"] == ca.colon_hex(cert_of(root_pem).fingerprint(hashes.SHA1()))
    assert root["SerialNumber"] == 0x0123456789ABCDEF0123456789 & (2**64 - 1)
    # The BYO cert's own SKI (SHA-1 style here) is the signing key ID leaves point at.
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    assert root["SigningKeyID"] == ca.colon_hex(ski)
    msgpack.packb(root)
    leaf = sign(root, web_csr[1])
    assert ca.leaf_info(leaf["CertPEM"])["AuthorityKeyID"] == root["SigningKeyID"]
    assert verify(leaf["CertPEM"], [root_pem], now=NOW) == WEB_URI


def test_byo_root_validation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    key_pem = sec1(key)

    def check(root_pem: str, message: str) -> None:
        with pytest.raises(ca.CAError, match=re.escape(message)):
            ca.normalize_config(
                "consul", {"PrivateKey": key_pem, "RootCert": root_pem}, cluster_id=CLUSTER
            )

    check(_byo_root_cert(other, f"spiffe://{TD}"), "different private key")
    check(_byo_root_cert(key, "spiffe://someone-else.consul"), f"must be spiffe://{TD}")
    check(_byo_root_cert(key, WEB_URI), "not a CA (signing) SPIFFE ID")
    check(_byo_root_cert(key, f"spiffe://{TD}", ca_flag=False), "not a CA certificate")
    # Older `cryptography` reads an empty SAN (no URI), newer ones refuse to parse it: a clear
    # CAError about RootCert either way, never a ValueError.
    check(_byo_root_cert(key, None), "RootCert")
    check("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "RootCert")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ca.CAError, match="too small"):
        ca.normalize_config("consul", {"PrivateKey": sec1(small)})
    expired = _byo_root_cert(key, f"spiffe://{TD}", days=-1)
    with pytest.raises(ca.CAError, match="RootCert expired"):
        make_root({"PrivateKey": key_pem, "RootCert": expired})


# ------------------------------------------------------------------------------------------
# A real OpenSSL handshake across a rotation: what Envoy-like peers actually check.


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> tuple[dict, dict]:
    """Run a TLS handshake in memory; return (cert seen by client, cert seen by server)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, conn in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    conn.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return c.getpeercert(), s.getpeercert()
    raise AssertionError("handshake did not finish")


def _context(side: int, chain_pem: str, key_pem: str, trusted: str, tmp: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(side)
    ctx.check_hostname = False  # Connect authorises by SPIFFE URI, not host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cadata=trusted)
    cert_file, key_file = tmp / f"{side}-cert.pem", tmp / f"{side}-key.pem"
    cert_file.write_text(chain_pem)
    key_file.write_text(key_pem)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def test_openssl_accepts_chains_across_a_rotation(tmp_path: Path) -> None:
    now = time.time()  # OpenSSL checks validity against the real clock
    old = make_root(serial=1, now=now)
    new = make_root({"PrivateKeyBits": 384}, serial=2, now=now)
    roots = ca.rotate([old], new, serial=3, now=now)
    db_key, db_csr = ca.make_csr(spiffe.service_uri(TD, DC, "db"))
    web_key, web_csr = ca.make_csr(WEB_URI)
    # db restarted after the rotation: new leaf, and it already trusts both roots.
    db_leaf = sign(roots[1], db_csr, serial=4, now=now)
    # web has not caught up: old leaf, and it trusts only the old root.
    web_leaf = sign(old, web_csr, serial=5, now=now)
    server = _context(
        ssl.PROTOCOL_TLS_SERVER, db_leaf["CertPEM"], db_key, ca.pem_bundle(roots), tmp_path
    )
    client = _context(
        ssl.PROTOCOL_TLS_CLIENT, web_leaf["CertPEM"], web_key, old["RootCert"], tmp_path
    )
    seen_by_client, seen_by_server = _handshake(client, server)
    assert ("URI", db_leaf["ServiceURI"]) in seen_by_client["subjectAltName"]
    assert ("URI", WEB_URI) in seen_by_server["subjectAltName"]
    # A peer trusting only a stranger's root refuses the same chain.
    stranger = make_root(serial=9, now=now)
    lost = _context(
        ssl.PROTOCOL_TLS_CLIENT, web_leaf["CertPEM"], web_key, stranger["RootCert"], tmp_path
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(lost, server)
