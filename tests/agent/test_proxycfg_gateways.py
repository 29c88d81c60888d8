"""Which TLS an ingress listener gets from its config entry (pure rules; the served result is
checked with real Envoys in tests/mesh/test_gateways.py)."""

from __future__ import annotations

from consulpy.agent.proxycfg_gateways import _listener_tls


def test_plaintext_unless_enabled() -> None:
    assert _listener_tls({}, {"Port": 1}) == {}
    assert _listener_tls({"TLS": {"Enabled": False}}, {"Port": 1}) == {}


def test_listener_versions_override_the_entry() -> None:
    entry = {"TLS": {"Enabled": True, "TLSMinVersion": "TLSv1_2", "TLSMaxVersion": "TLSv1_3"}}
    assert _listener_tls(entry, {"TLS": {"TLSMinVersion": "TLSv1_3"}}) == {
        "min": "TLSv1_3",
        "max": "TLSv1_3",
    }
    assert _listener_tls({}, {"TLS": {"Enabled": True}}) == {"min": "", "max": ""}


def test_sds_and_cipher_suites_are_refused_not_ignored() -> None:
    sds = {"SDS": {"ClusterName": "sds", "CertResource": "c"}}
    assert _listener_tls({"TLS": sds}, {}) is None
    assert _listener_tls({}, {"TLS": sds}) is None
    assert _listener_tls({}, {"Services": [{"Name": "web", "TLS": sds}]}) is None
    suites = {"Enabled": True, "CipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]}
    assert _listener_tls({}, {"TLS": suites}) is None
