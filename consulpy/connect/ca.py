"""The built-in Connect CA ("consul" provider): configuration, roots, leaf signing, rotation.

Pure functions over plain dicts. The server's leader calls them and stores the results in the
Raft-replicated state store, so every value returned is msgpack-encodable (str, int, bool,
None, list, dict): keys and certificates travel as PEM strings, times as RFC 3339 UTC strings.
Nothing here does I/O or reads the clock; callers pass ``now`` (Unix seconds) and the serial
number (from the Raft-backed counter), which is what keeps every server's copy identical and
the functions testable.

Profiles follow Consul's built-in CA: EC P-256 roots by default, SKI/AKI = SHA-256 of the
public key, leaves with an empty subject and a critical URI SAN, valid from one minute in the
past to absorb clock drift between servers and agents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consulpy.connect import spiffe
from consulpy.util.durations import DurationError, duration_from_json, format_duration_ns

PROVIDER = "consul"
ROOT_NAME = "Consul CA Primary Cert"

_HOUR_NS = 3600 * 1_000_000_000
MIN_LEAF_CERT_TTL_NS = _HOUR_NS
MAX_LEAF_CERT_TTL_NS = 8760 * _HOUR_NS
MIN_INTERMEDIATE_CERT_TTL_NS = 3 * _HOUR_NS
# Certificates start this far in the past so peers whose clocks lag still accept them.
CLOCK_DRIFT_S = 60
# A cross-signed root is only needed while leaves from before a rotation are still around.
CROSS_SIGN_VALIDITY_S = 7 * 24 * 3600

DEFAULT_CONFIG: dict[str, Any] = {
    "LeafCertTTL": "72h",
    "IntermediateCertTTL": "8760h",
    "RootCertTTL": "87600h",
    "PrivateKeyType": "ec",
    "PrivateKeyBits": 256,
    "CSRMaxPerSecond": 50,
    "CSRMaxConcurrent": 0,
}
_DEFAULT_BITS = {"ec": 256, "rsa": 2048}
_EC_CURVES: dict[int, type[ec.EllipticCurve]] = {
    224: ec.SECP224R1,
    256: ec.SECP256R1,
    384: ec.SECP384R1,
    521: ec.SECP521R1,
}
# Curves the Web PKI verifier of `cryptography` accepts; chains with others (P-224) are
# checked by this module's own path builder instead.
_WEBPKI_CURVES = ("secp256r1", "secp384r1", "secp521r1")

# Canonical config keys and how each is decoded. RotationPeriod is a legacy key: accepted and
# dropped.
_FIELDS: dict[str, str] = {
    "LeafCertTTL": "duration",
    "IntermediateCertTTL": "duration",
    "RootCertTTL": "duration",
    "PrivateKeyType": "str",
    "PrivateKeyBits": "int",
    "CSRMaxPerSecond": "number",
    "CSRMaxConcurrent": "int",
    "PrivateKey": "str",
    "RootCert": "str",
    "RotationPeriod": "ignored",
}
# The private parts of a stored root that the HTTP API never shows.
_PRIVATE_ROOT_FIELDS = ("SigningKey", "SigningCert", "RotatedOutAt")


class CAError(Exception):
    """Bad CA input (config, CSR, certificate): the text is meant for the HTTP error body."""


# ---------------------------------------------------------------------------------------------
# Small encoders shared by the whole module.


def _fold(key: str) -> str:
    """LeafCertTTL, leaf_cert_ttl and leafcertttl all name the same field (as in Consul)."""
    return key.replace("_", "").replace("-", "").lower()


_FOLDED = {_fold(name): name for name in _FIELDS}


def colon_hex(data: bytes) -> str:
    """Lower-case colon-separated hex, Consul's spelling for key IDs and fingerprints."""
    return ":".join(f"{b:02x}" for b in data)


def encode_serial(serial: int) -> str:
    """A certificate serial as the leaf API shows it: big-endian bytes, e.g. ``"1f:0a"``."""
    length = max(1, (serial.bit_length() + 7) // 8)
    return colon_hex(serial.to_bytes(length, "big"))


def rfc3339(when: dt.datetime) -> str:
    """UTC time as Go marshals a certificate time (whole seconds, ``Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _at(now: float) -> dt.datetime:
    """Unix seconds -> aware UTC datetime, floored to the second X.509 can encode."""
    return dt.datetime.fromtimestamp(math.floor(now), tz=dt.UTC)


def _key_id(public_key: Any) -> bytes:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def _ski(cert: x509.Certificate) -> bytes:
    """The cert's Subject Key ID, or the SHA-256 key ID when it has none (BYO roots)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return _key_id(cert.public_key())


def _fingerprint(cert: x509.Certificate) -> str:
    return colon_hex(cert.fingerprint(hashes.SHA1()))  # Consul's root ID format


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: Any) -> str:
    """SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"), as Consul writes keys."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _load_cert(pem: str, what: str) -> x509.Certificate:
    certs = _load_certs(pem, what)
    return certs[0]


def _load_certs(pem: str, what: str) -> list[x509.Certificate]:
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise CAError(f"error parsing {what}: no PEM-encoded certificate found")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
        for cert in certs:
            # Extensions are decoded lazily; decode them here so a malformed one (which
            # newer `cryptography` releases refuse, e.g. an empty SAN) is a CAError up front.
            _ = cert.extensions
    except ValueError as exc:
        raise CAError(f"error parsing {what}: {exc}") from None
    return certs


def _load_private_key(pem: str, what: str = "private key") -> Any:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CAError(f"error parsing {what}: {exc}") from None
    _key_info(key, what)
    return key


def _key_info(key: Any, what: str = "key") -> tuple[str, int]:
    """("ec", 256) / ("rsa", 2048) for a public or private key; CAError for anything else."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
        if bits not in _EC_CURVES:
            raise CAError(f"{what}: unsupported elliptic curve {key.curve.name}")
        return "ec", bits
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CAError(f"{what}: RSA key of {key.key_size} bits is too small (minimum 2048)")
        return "rsa", key.key_size
    raise CAError(f"{what}: only EC and RSA keys are supported")


def _generate_key(key_type: str, bits: int) -> Any:
    if key_type == "ec":
        return ec.generate_private_key(_EC_CURVES[bits]())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _check_serial(serial: int) -> int:
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial < 1 << 63:
        raise CAError(f"serial number must be a positive 63-bit integer, got {serial!r}")
    return serial


# DER of a subjectAltName extension whose name list is empty: the OID 2.5.29.17, an optional
# critical=TRUE, then an OCTET STRING holding an empty SEQUENCE.
_SAN_OID_DER = bytes.fromhex("0603551d11")
_EMPTY_SAN_DER = (
    _SAN_OID_DER + bytes.fromhex("04023000"),
    _SAN_OID_DER + bytes.fromhex("0101ff04023000"),
)


def _san(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    """The subject alternative names, [] when there are none.

    A list rather than the extension object: `cryptography` (since 51) can neither build an
    empty SubjectAlternativeName nor parse one, while Go (Consul) reads an empty SAN as "no
    names", so an empty one must reach the same "invalid number of URIs: 0" answer. Any other
    unreadable extension is a CAError (a refusal with its reason), never an unhandled ValueError.
    """
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        der = cert.public_bytes(serialization.Encoding.DER)
        if any(pattern in der for pattern in _EMPTY_SAN_DER):
            return []
        what = "CSR" if isinstance(cert, x509.CertificateSigningRequest) else "certificate"
        raise CAError(f"error parsing {what}: {exc}") from None


def _names(names: list[x509.GeneralName], kind: type[x509.GeneralName]) -> list[Any]:
    """The values of the names of one kind, in order (URIs and DNS names as str)."""
    return [name.value for name in names if isinstance(name, kind)]


def _uris(names: list[x509.GeneralName]) -> list[str]:
    return _names(names, x509.UniformResourceIdentifier)


# ---------------------------------------------------------------------------------------------
# Configuration.


def _decode_field(name: str, kind: str, value: Any) -> Any:
    prefix = f"error decoding config: '{name}'"
    if kind == "duration":
        try:
            ns = duration_from_json(value)
        except DurationError as exc:
            raise CAError(f"{prefix}: {exc}") from None
        return value if isinstance(value, str) else format_duration_ns(ns)
    if kind == "str":
        if not isinstance(value, str):
            raise CAError(f"{prefix}: expected a string, got {value!r}")
        return value
    if kind in ("int", "number"):
        number: float | int
        if isinstance(value, bool):
            raise CAError(f"{prefix}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value.strip()) if kind == "number" else int(value.strip())
            except ValueError:
                raise CAError(f"{prefix}: cannot parse {value!r} as a number") from None
        else:
            raise CAError(f"{prefix}: expected a number, got {value!r}")
        if isinstance(number, float) and not math.isfinite(number):
            raise CAError(f"{prefix}: expected a finite number, got {value!r}")
        if kind == "int" and number != int(number):
            raise CAError(f"{prefix}: expected an integer, got {value!r}")
        if number < 0:
            raise CAError(f"{prefix}: must not be negative")
        return int(number) if number == int(number) else number
    raise AssertionError(kind)


def _fold_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Map every accepted spelling onto the canonical key; unknown keys are ignored."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise CAError(f"error decoding config: key {key!r} is not a string")
        name = _FOLDED.get(_fold(key))
        if name is None:
            continue
        if name in out and out[name] != value:
            raise CAError(
                f"error decoding config: '{name}' is given twice with different values "
                f"(as '{spelled[name]}' and '{key}')"
            )
        out[name] = value
        spelled[name] = key
    return out


def _unwrap(config: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Accept either normalize_config's result or its inner Config map."""
    if "Config" in config and "Provider" in config:
        return str(config["Provider"]), config["Config"] or {}
    return PROVIDER, config


def normalize_config(
    provider: str,
    config: Mapping[str, Any] | None,
    *,
    existing: Mapping[str, Any] | None = None,
    cluster_id: str | None = None,
) -> dict[str, Any]:
    """Validate a CA configuration and fill in defaults.

    Accepts the API spelling (LeafCertTTL), the agent-config spelling (leaf_cert_ttl) and
    durations as Go strings or integer nanoseconds. Returns
    ``{"Provider": "consul", "Config": {...}}`` with canonical keys; durations given as strings
    are kept as written, numbers become Go duration strings. PrivateKey and RootCert appear
    only when set.

    ``existing`` is the currently stored normalized config. When the new map does not mention
    PrivateKey/RootCert at all (the GET view hides the key, so a GET-edit-PUT round trip
    drops it), the existing values are kept, so such a round trip does not rotate the root;
    an explicit ``""`` clears them. ``cluster_id``, when known, lets a BYO RootCert be checked
    against the trust domain.
    """
    if not isinstance(provider, str) or provider == "":
        raise CAError("CA Provider must be specified")
    if provider != PROVIDER:
        raise CAError(
            f'unknown CA provider "{provider}": consulpy only has the built-in "consul" '
            "provider (vault and aws-pca are not supported)"
        )
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise CAError("error decoding config: Config must be an object")
    given = _fold_config(config)

    if existing is not None:
        old_provider, old_config = _unwrap(existing)
        if old_provider == PROVIDER and "PrivateKey" not in given and "RootCert" not in given:
            for name in ("PrivateKey", "RootCert"):
                if old_config.get(name):
                    given[name] = old_config[name]

    out = dict(DEFAULT_CONFIG)
    for name, value in given.items():
        kind = _FIELDS[name]
        if kind != "ignored":
            out[name] = _decode_field(name, kind, value)
    if "PrivateKeyBits" not in given:
        out["PrivateKeyBits"] = _DEFAULT_BITS.get(out["PrivateKeyType"], 256)
    for name in ("PrivateKey", "RootCert"):
        if name in out and not out[name].strip():
            del out[name]

    if "RootCert" in out and "PrivateKey" not in out:
        raise CAError("must provide a private key when providing a root cert")
    _validate_common(out)
    if "PrivateKey" in out:
        _validate_byo(out, cluster_id)
    return {"Provider": PROVIDER, "Config": out}


def _validate_common(cfg: Mapping[str, Any]) -> None:
    """TTL relations and key parameters, with Consul's error texts."""
    leaf = duration_from_json(cfg["LeafCertTTL"])
    inter = duration_from_json(cfg["IntermediateCertTTL"])
    root = duration_from_json(cfg["RootCertTTL"])
    if root < inter:
        raise CAError(
            "root cert TTL is set and is not greater than intermediate cert ttl. "
            f"root cert ttl: {format_duration_ns(root)}, "
            f"intermediate cert ttl: {format_duration_ns(inter)}"
        )
    if leaf < MIN_LEAF_CERT_TTL_NS:
        minimum = format_duration_ns(MIN_LEAF_CERT_TTL_NS)
        raise CAError(f"leaf cert TTL must be greater or equal than {minimum}")
    if leaf > MAX_LEAF_CERT_TTL_NS:
        raise CAError(f"leaf cert TTL must be less than {format_duration_ns(MAX_LEAF_CERT_TTL_NS)}")
    if inter < MIN_INTERMEDIATE_CERT_TTL_NS:
        raise CAError("Intermediate Cert TTL must be greater or equal than 3h")
    if inter < 3 * leaf:
        raise CAError(
            "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL "
            f"(>={format_duration_ns(3 * leaf)})."
        )
    key_type, bits = cfg["PrivateKeyType"], cfg["PrivateKeyBits"]
    if key_type == "ec":
        if bits not in _EC_CURVES:
            raise CAError("EC key length must be one of (224, 256, 384, 521) bits")
    elif key_type == "rsa":
        if bits not in (2048, 4096):
            raise CAError("RSA key length must be 2048 or 4096 bits")
    else:
        raise CAError("private key type must be either 'ec' or 'rsa'")


def _validate_byo(cfg: Mapping[str, Any], cluster_id: str | None) -> None:
    """A bring-your-own key (and root) must be usable as the CA's signing pair."""
    key = _load_private_key(cfg["PrivateKey"], "PrivateKey")
    if "RootCert" not in cfg:
        return
    cert = _load_cert(cfg["RootCert"], "RootCert")
    _check_byo_root(cert, key, cluster_id)


def _check_byo_root(cert: x509.Certificate, key: Any, cluster_id: str | None) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CAError("RootCert is not a CA certificate (basic constraints CA=true missing)")
    if _key_id(cert.public_key()) != _key_id(key.public_key()):
        raise CAError("RootCert is for a different private key than PrivateKey")
    uris = _uris(_san(cert))
    if len(uris) != 1:
        raise CAError(f"RootCert must have exactly one URI SAN, found {len(uris)}")
    try:
        ident = spiffe.parse(uris[0])
    except spiffe.SpiffeError as exc:
        raise CAError(f"RootCert URI SAN: {exc}") from None
    if not isinstance(ident, spiffe.SigningID):
        raise CAError(f"RootCert URI SAN {uris[0]} is not a CA (signing) SPIFFE ID")
    if cluster_id is not None:
        want = spiffe.signing_uri(spiffe.trust_domain(cluster_id))
        if ident.uri() != want:
            raise CAError(f"RootCert URI SAN must be {want}, got {uris[0]}")


def needs_new_root(old_config: Mapping[str, Any] | None, new_config: Mapping[str, Any]) -> bool:
    """Does moving from ``old_config`` to ``new_config`` (normalized) need a new root?

    Only the signing identity matters: provider, BYO key and root, and (when the CA makes
    its own key) the key type and size. TTL and rate-limit changes apply in place.
    """
    if old_config is None:
        return True
    old_provider, old = _unwrap(old_config)
    new_provider, new = _unwrap(new_config)
    if old_provider != new_provider:
        return True
    if (old.get("PrivateKey") or "") != (new.get("PrivateKey") or ""):
        return True
    if (old.get("RootCert") or "") != (new.get("RootCert") or ""):
        return True
    if new.get("PrivateKey"):
        return False
    return (old.get("PrivateKeyType"), old.get("PrivateKeyBits")) != (
        new.get("PrivateKeyType"),
        new.get("PrivateKeyBits"),
    )


def leaf_cert_ttl(config: Mapping[str, Any]) -> float:
    """LeafCertTTL of a normalized config, in seconds (what sign_leaf and prune_roots take)."""
    _, inner = _unwrap(config)
    return duration_from_json(inner.get("LeafCertTTL", DEFAULT_CONFIG["LeafCertTTL"])) / 1e9


# ---------------------------------------------------------------------------------------------
# Roots.


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=not ca,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _compact_uid() -> str:
    alphabet = string.digits + string.ascii_lowercase
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _build_root_cert(
    key: Any, cluster_id: str, *, serial: int, not_before: dt.datetime, ttl_ns: int
) -> x509.Certificate:
    kid = _key_id(key.public_key())
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                f"pri-{_compact_uid()}.{PROVIDER}.ca.{cluster_id[:8]}.consul",
            )
        ]
    )
    td = spiffe.trust_domain(cluster_id)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(microseconds=ttl_ns // 1000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(kid), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(kid, None, None),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe.signing_uri(td))]),
            critical=False,
        )
    )
    return builder.sign(key, hashes.SHA256())


def generate_root(
    cluster_id: str, config: Mapping[str, Any], *, serial: int, now: float
) -> dict[str, Any]:
    """Create the CA root for ``cluster_id`` from a normalized config.

    Generates a key of PrivateKeyType/Bits unless the config brings its own PrivateKey, and a
    self-signed root valid for RootCertTTL unless it brings its own RootCert. The result is a
    stored CARoot, including the private ``SigningKey``/``SigningCert`` (see public_root).
    """
    provider, inner = _unwrap(config)
    cfg = normalize_config(provider, inner, cluster_id=cluster_id)["Config"]
    _check_serial(serial)
    when = _at(now)
    if "PrivateKey" in cfg:
        key = _load_private_key(cfg["PrivateKey"], "PrivateKey")
    else:
        key = _generate_key(cfg["PrivateKeyType"], cfg["PrivateKeyBits"])
    if "RootCert" in cfg:
        cert = _load_cert(cfg["RootCert"], "RootCert")
        if cert.not_valid_after_utc <= when:
            raise CAError(f"RootCert expired at {rfc3339(cert.not_valid_after_utc)}")
    else:
        ttl_ns = duration_from_json(cfg["RootCertTTL"])
        cert = _build_root_cert(key, cluster_id, serial=serial, not_before=when, ttl_ns=ttl_ns)
    key_type, bits = _key_info(key)
    root_pem = _cert_pem(cert)
    return {
        "ID": _fingerprint(cert),
        "Name": ROOT_NAME,
        # uint64 as in Consul's CARoot (a BYO root may carry a longer serial: keep the low bits).
        "SerialNumber": cert.serial_number & ((1 << 64) - 1),
        "SigningKeyID": colon_hex(_ski(cert)),
        "ExternalTrustDomain": cluster_id,
        "NotBefore": rfc3339(cert.not_valid_before_utc),
        "NotAfter": rfc3339(cert.not_valid_after_utc),
        "RootCert": root_pem,
        "IntermediateCerts": None,
        "Active": True,
        "PrivateKeyType": key_type,
        "PrivateKeyBits": bits,
        "SigningKey": _key_pem(key),
        "SigningCert": root_pem,
    }


def public_root(root: Mapping[str, Any]) -> dict[str, Any]:
    """The API view of a stored root: everything but the signing key and bookkeeping."""
    return {k: v for k, v in root.items() if k not in _PRIVATE_ROOT_FIELDS}


def pem_bundle(roots: Iterable[Mapping[str, Any]]) -> str:
    """``/v1/connect/ca/roots?pem=true``: each root cert followed by its intermediates."""
    parts: list[str] = []
    for root in roots:
        for pem in [root["RootCert"], *(root.get("IntermediateCerts") or [])]:
            parts.append(pem if pem.endswith("\n") else pem + "\n")
    return "".join(parts)


def _signer(root: Mapping[str, Any]) -> tuple[x509.Certificate, Any]:
    """The certificate and key that sign on behalf of ``root``."""
    key_pem = root.get("SigningKey")
    if not key_pem:
        raise CAError(f"CA root {root.get('ID', '?')} has no signing key")
    cert = _load_cert(root.get("SigningCert") or root["RootCert"], "signing certificate")
    key = _load_private_key(key_pem, "signing key")
    if _key_id(cert.public_key()) != _key_id(key.public_key()):
        raise CAError(f"CA root {root.get('ID', '?')}: signing key does not match its certificate")
    return cert, key


def cross_sign(
    old_root: Mapping[str, Any], new_root: Mapping[str, Any], *, serial: int, now: float
) -> str:
    """Have the old root vouch for the new root's key (rotation without a trust gap).

    The result has the new root's subject, key and SPIFFE URI but is issued and signed by the
    old root, valid 7 days from a minute ago, CA with path length 0. Appended to the new
    root's IntermediateCerts, it lets peers that still trust only the old root verify leaves
    signed by the new one.
    """
    _check_serial(serial)
    old_cert, old_key = _signer(old_root)
    new_cert = _load_cert(new_root["RootCert"], "new root certificate")
    not_before = _at(now) - dt.timedelta(seconds=CLOCK_DRIFT_S)
    builder = (
        x509.CertificateBuilder()
        .subject_name(new_cert.subject)
        .issuer_name(old_cert.subject)
        .public_key(new_cert.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(seconds=CROSS_SIGN_VALIDITY_S))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(_ski(new_cert)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(_ski(old_cert), None, None), critical=False)
    )
    san = _san(new_cert)
    if san:  # an empty SAN cannot be encoded: leave the extension out
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return _cert_pem(builder.sign(old_key, hashes.SHA256()))


def deactivate(root: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A copy of ``root`` marked inactive, stamped with when it was rotated out."""
    out = dict(root)
    out["Active"] = False
    out["RotatedOutAt"] = rfc3339(_at(now))
    return out


def rotate(
    roots: Iterable[Mapping[str, Any]],
    new_root: Mapping[str, Any],
    *,
    serial: int,
    now: float,
    cross_signed: bool = True,
) -> list[dict[str, Any]]:
    """The roots list after ``new_root`` becomes active (spec 1.6 steps 2-4).

    The active root cross-signs the new one (unless ``cross_signed`` is False, for
    ForceWithoutCrossSigning), is deactivated and kept; the new root goes last. ``serial`` is
    used for the cross-signed certificate.
    """
    current = [dict(r) for r in roots]
    fresh = dict(new_root)
    fresh["Active"] = True
    active = [r for r in current if r.get("Active")]
    if any(r["ID"] == fresh["ID"] for r in active):
        return current
    if cross_signed and active:
        xc = cross_sign(active[-1], fresh, serial=serial, now=now)
        fresh["IntermediateCerts"] = [*(fresh.get("IntermediateCerts") or []), xc]
    out = [deactivate(r, now) if r.get("Active") else r for r in current if r["ID"] != fresh["ID"]]
    out.append(fresh)
    return out


def prune_roots(
    roots: Iterable[Mapping[str, Any]], *, leaf_ttl_s: float, now: float
) -> list[dict[str, Any]]:
    """Drop roots that have been inactive for longer than 2 x LeafCertTTL.

    By then every leaf they signed has expired. Roots without RotatedOutAt are kept.
    """
    keep: list[dict[str, Any]] = []
    for root in roots:
        rotated = root.get("RotatedOutAt")
        if not root.get("Active") and rotated:
            age = now - _parse_rfc3339(rotated).timestamp()
            if age > 2 * leaf_ttl_s:
                continue
        keep.append(dict(root))
    return keep


# ---------------------------------------------------------------------------------------------
# Leaves.


def make_csr(
    uri: str,
    *,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> tuple[str, str]:
    """Agent side: a fresh EC P-256 key (SEC1 PEM) and a CSR carrying ``uri`` as URI SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    names += [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM).decode()


def _parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    if not isinstance(csr_pem, str) or "-----BEGIN" not in csr_pem:
        raise CAError("no PEM-encoded data found")
    if "-----BEGIN CERTIFICATE REQUEST-----" not in csr_pem:
        raise CAError("PEM block is not a CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        valid = csr.is_signature_valid
        csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CAError(f"error parsing CSR: {exc}") from None
    if not valid:
        raise CAError("CSR signature is invalid")
    return csr


def sign_leaf(
    root: Mapping[str, Any],
    csr_pem: str,
    *,
    trust_domain: str,
    datacenter: str,
    leaf_ttl_s: float,
    serial: int,
    now: float,
) -> dict[str, Any]:
    """Check a service CSR as Consul's leader does and sign it with ``root``.

    Refuses (CAError) a CSR without exactly one URI SAN, with e-mail SANs, whose URI is not a
    service SPIFFE ID, is from another datacenter or from another trust domain. The ACL check
    (service:write on the service) is the caller's. Returns the IssuedCert fields; CertPEM is
    the leaf followed by the root's IntermediateCerts.
    """
    csr = _parse_csr(csr_pem)
    san = _san(csr)
    uris = _uris(san)
    if len(uris) != 1:
        raise CAError(f"CSR SAN contains an invalid number of URIs: {len(uris)}")
    if _names(san, x509.RFC822Name):
        raise CAError("CSR SAN does not allow specifying email addresses")
    try:
        ident = spiffe.parse(uris[0])
    except spiffe.SpiffeError as exc:
        raise CAError(str(exc)) from None
    if not isinstance(ident, spiffe.ServiceID):
        raise CAError("SPIFFE ID in CSR must be a service ID")
    if ident.datacenter != datacenter:
        raise CAError(
            f"SPIFFE ID in CSR from a different datacenter: {ident.datacenter}, we are {datacenter}"
        )
    cluster_id, _, domain = trust_domain.lower().partition(".")
    if not (cluster_id and domain):
        raise CAError(f"invalid trust domain {trust_domain!r}: want <cluster-id>.consul")
    if not spiffe.SigningID(cluster_id, domain).can_sign(ident):
        raise CAError(
            f"SPIFFE ID in CSR from a different trust domain: {ident.host}, "
            f"we are {trust_domain.lower()}"
        )
    if not leaf_ttl_s > 0:
        raise CAError(f"leaf TTL must be positive, got {leaf_ttl_s!r}")
    _check_serial(serial)
    ca_cert, ca_key = _signer(root)
    when = _at(now)
    if ca_cert.not_valid_after_utc < when:
        raise CAError(
            "root expired: certificate expired, expiration date: "
            f"{rfc3339(ca_cert.not_valid_after_utc)}"
        )

    public_key = csr.public_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uris[0])]
    names += [x509.DNSName(n) for n in _names(san, x509.DNSName)]
    names += [x509.IPAddress(a) for a in _names(san, x509.IPAddress)]
    not_before = when - dt.timedelta(seconds=CLOCK_DRIFT_S)
    not_after = not_before + dt.timedelta(seconds=math.floor(leaf_ttl_s))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier(_key_id(public_key)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(_ski(ca_cert), None, None), critical=False)
        # The subject is empty, so RFC 5280 requires the SAN to be critical.
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    chain = _cert_pem(cert)
    for pem in root.get("IntermediateCerts") or []:
        chain += pem if pem.endswith("\n") else pem + "\n"
    return {
        "SerialNumber": encode_serial(serial),
        "CertPEM": chain,
        "ValidAfter": rfc3339(cert.not_valid_before_utc),
        "ValidBefore": rfc3339(cert.not_valid_after_utc),
        "Service": ident.service,
        "ServiceURI": uris[0],
    }


def leaf_info(cert_pem: str) -> dict[str, Any]:
    """What an agent needs to manage a cached leaf (the first cert of ``cert_pem``).

    ``AuthorityKeyID`` equals the SigningKeyID of the root that signed it, which is how a
    leaf is recognised as signed by a no-longer-active root.
    """
    cert = _load_cert(cert_pem, "certificate")
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        authority = colon_hex(aki.key_identifier or b"")
    except x509.ExtensionNotFound:
        authority = ""
    uris = _uris(_san(cert))
    return {
        "SerialNumber": encode_serial(cert.serial_number),
        "URI": uris[0] if uris else "",
        "ValidAfter": rfc3339(cert.not_valid_before_utc),
        "ValidBefore": rfc3339(cert.not_valid_after_utc),
        "AuthorityKeyID": authority,
    }


# ---------------------------------------------------------------------------------------------
# Verification.


def _webpki_key(cert: x509.Certificate) -> bool:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name in _WEBPKI_CURVES
    return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _check_ca(cert: x509.Certificate, when: dt.datetime, below: int) -> bool:
    """Can ``cert`` issue in a path with ``below`` CA certs already under it?"""
    if not _valid_at(cert, when):
        return False
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    if constraints.path_length is not None and below > constraints.path_length:
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def _verify_by_hand(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    when: dt.datetime,
) -> None:
    """RFC 5280 path building for keys the Web PKI verifier refuses (P-224)."""
    if not _valid_at(leaf, when):
        raise CAError("certificate verification failed: leaf is expired or not yet valid")
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise CAError("certificate verification failed: leaf is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise CAError("certificate verification failed: leaf lacks the clientAuth usage")
    anchor_ders = {c.public_bytes(serialization.Encoding.DER) for c in anchors}
    candidates = anchors + intermediates

    def chains(cert: x509.Certificate, below: int, seen: frozenset[bytes]) -> bool:
        for issuer in candidates:
            if issuer.subject != cert.issuer:
                continue
            der = issuer.public_bytes(serialization.Encoding.DER)
            if der in seen:
                continue
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            if not _check_ca(issuer, when, below):
                continue
            if der in anchor_ders:
                return True
            if below < 4 and chains(issuer, below + 1, seen | {der}):
                return True
        return False

    if not chains(leaf, 0, frozenset()):
        raise CAError("certificate verification failed: no valid chain to a trusted root")


def verify_leaf(
    leaf_pem_chain: str,
    roots_pems: Iterable[str],
    *,
    now: float,
    manual: bool | None = None,
) -> str:
    """Verify a leaf chain (leaf PEM then intermediates) against trusted root PEMs.

    Returns the leaf's URI SAN; raises CAError when no valid path exists at ``now``. Uses
    `cryptography`'s X.509 verifier (client profile: the leaf must allow clientAuth) and
    falls back to this module's own path builder when a key is outside the Web PKI set
    (EC P-224). ``manual`` forces one or the other (None = choose).
    """
    certs = _load_certs(leaf_pem_chain, "certificate chain")
    leaf, intermediates = certs[0], certs[1:]
    anchors = [c for pem in roots_pems for c in _load_certs(pem, "root certificate")]
    if not anchors:
        raise CAError("certificate verification failed: no trusted roots given")
    uris = _uris(_san(leaf))
    if len(uris) != 1:
        raise CAError(f"leaf certificate must have exactly one URI SAN, found {len(uris)}")
    when = _at(now)
    if manual is None:
        manual = not all(_webpki_key(c) for c in [*certs, *anchors])
    if manual:
        _verify_by_hand(leaf, intermediates, anchors, when)
        return uris[0]
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(anchors))
        .time(when)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as exc:
        raise CAError(f"certificate verification failed: {exc}") from None
    return uris[0]


# ---------------------------------------------------------------------------------------------
# Secondary datacenters: an intermediate signed by the primary's root.


def make_intermediate_csr(trust_domain: str, datacenter: str) -> tuple[str, str]:
    """Secondary side: a fresh EC P-256 key (PEM) and a CSR for the datacenter's
    intermediate CA, carrying the trust domain's signing URI (the primary checks it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"sec-{_compact_uid()}.{datacenter}.ca.consul")]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe.signing_uri(trust_domain))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM).decode()


def sign_intermediate(
    root: Mapping[str, Any],
    csr_pem: str,
    *,
    trust_domain: str,
    ttl_s: float,
    serial: int,
    now: float,
) -> str:
    """Primary side: sign a secondary datacenter's intermediate CA with ``root``.

    The CSR must carry exactly the trust domain's signing URI (a secondary of another
    cluster is refused). The result is a CA certificate with path length 0 (it signs leaves
    only), valid for ``ttl_s`` but never past the root.
    """
    csr = _parse_csr(csr_pem)
    uris = _uris(_san(csr))
    want = spiffe.signing_uri(trust_domain)
    if uris != [want]:
        raise CAError(f"intermediate CSR must carry exactly the URI SAN {want}, got {uris}")
    _check_serial(serial)
    ca_cert, ca_key = _signer(root)
    not_before = _at(now) - dt.timedelta(seconds=CLOCK_DRIFT_S)
    not_after = min(
        not_before + dt.timedelta(seconds=math.floor(ttl_s)), ca_cert.not_valid_after_utc
    )
    public_key = csr.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(_key_id(public_key)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(_ski(ca_cert), None, None), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(want)]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert)


def secondary_root(
    primary_root: Mapping[str, Any], key_pem: str, intermediate_pem: str
) -> dict[str, Any]:
    """A secondary's stored copy of the primary's active root: the same public root, with
    the secondary's intermediate in front of its IntermediateCerts and as the signer."""
    out = dict(primary_root)
    out["IntermediateCerts"] = [intermediate_pem, *(primary_root.get("IntermediateCerts") or [])]
    out["SigningKey"] = key_pem
    out["SigningCert"] = intermediate_pem
    # Leaves carry the intermediate's key ID: an agent renews them when it changes.
    out["SigningKeyID"] = colon_hex(_ski(_load_cert(intermediate_pem, "intermediate")))
    return out


def intermediate_due(pem: str, now: float) -> bool:
    """Whether a secondary's intermediate should be renewed: two thirds of its lifetime
    are gone (its leaves must never outlive it)."""
    cert = _load_cert(pem, "intermediate")
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    return now >= start + (end - start) * 2 / 3


def intermediate_of(root: Mapping[str, Any]) -> str:
    """The SigningCert of a stored root when it is an intermediate (not the root itself)."""
    signing = root.get("SigningCert") or ""
    return signing if signing and signing != root.get("RootCert") else ""
