"""Consul's spellings of TLS versions and cipher suites, as Python's ssl module needs them.

Shared by the config validation (a bad name is a config error at load) and the contexts.
"""

from __future__ import annotations

import os
import ssl

_MIN_VERSIONS = {
    "tlsv1_0": ssl.TLSVersion.TLSv1,
    "tlsv1_1": ssl.TLSVersion.TLSv1_1,
    "tlsv1_2": ssl.TLSVersion.TLSv1_2,
    "tlsv1_3": ssl.TLSVersion.TLSv1_3,
    # the legacy top-level spelling
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}

# Consul's (Go's) cipher suite names -> OpenSSL's. Only TLS <= 1.2 suites are configurable,
# as in Consul; TLS 1.3 suites are always the library's.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
}

# The TLS settings of config entries (gateway TLS, mesh TLS) are Envoy's: Consul's version
# names are Envoy's enum names, and its cipher suites map to BoringSSL's names. An unset
# version is "" (Envoy's default).
ENVOY_TLS_VERSIONS = ("TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3")
# the versions under which CipherSuites may be set (TLS 1.3 suites are not configurable)
CIPHER_SUITE_MIN_VERSIONS = ("", "TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2")
ENVOY_CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}


class TLSConfigError(ValueError):
    pass


def min_version(name: str | None) -> ssl.TLSVersion:
    """Consul's `tls_min_version` value as an ssl version (TLSv1_2 when unset)."""
    version = _MIN_VERSIONS.get((name or "tlsv1_2").lower())
    if version is None:
        raise TLSConfigError(
            f"tls_min_version: unknown value {name!r}; use TLSv1_0, TLSv1_1, TLSv1_2 or TLSv1_3"
        )
    return version


def openssl_ciphers(suites: str | None) -> str | None:
    """A comma-separated Consul `tls_cipher_suites` value as an OpenSSL cipher string."""
    if not suites:
        return None
    names = []
    for raw in suites.split(","):
        name = raw.strip()
        if not name:
            continue
        mapped = CIPHER_SUITES.get(name)
        if mapped is None:
            raise TLSConfigError(f"tls_cipher_suites: unsupported cipher suite {name!r}")
        names.append(mapped)
    return ":".join(names) or None


def ca_bundle(ca_file: str | None, ca_path: str | None) -> str:
    """The PEM text of `ca_file` plus every PEM file in the directory `ca_path`.

    Consul reads every file in `ca_path` whatever its name; OpenSSL's own capath needs
    hashed names (c_rehash), so the directory is read here instead. Raises OSError."""
    parts: list[str] = []
    if ca_file:
        with open(ca_file, encoding="ascii", errors="replace") as fh:
            parts.append(fh.read())
    if ca_path:
        for name in sorted(os.listdir(ca_path)):
            path = os.path.join(ca_path, name)
            if not os.path.isfile(path):
                continue
            with open(path, encoding="ascii", errors="replace") as fh:
                text = fh.read()
            if "-----BEGIN CERTIFICATE-----" in text:
                parts.append(text)
        if not ca_file and not parts:
            raise OSError(f"no PEM certificates in ca_path {ca_path}")
    return "\n".join(parts)
