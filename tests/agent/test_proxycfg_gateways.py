"""Which TLS an ingress listener gets from its config entry (pure rules; the served result is
checked with real Envoys in tests/mesh/test_gateways.py)."""

from __future__ import annotations

import pytest

from consulpy.agent.proxycfg_gateways import _listener_tls, _served_tls


def test_plaintext_unless_enabled() -> None:
    assert _listener_tls({}, {"Port": 1}) == {}
    assert _listener_tls({"TLS": {"Enabled": False}}, {"Port": 1}) == {}


def test_listener_versions_override_the_entry() -> None:
    entry = {"TLS": {"Enabled": True, "TLSMinVersion": "TLSv1_2", "TLSMaxVersion": "TLSv1_3"}}
    assert _listener_tls(entry, {"TLS": {"TLSMinVersion": "TLSv1_3"}}) == {
        "min": "TLSv1_3",
        "max": "TLSv1_3",
        "ciphers": (),
    }
    assert _listener_tls({}, {"TLS": {"Enabled": True}}) == {"min": "", "max": "", "ciphers": ()}


def test_cipher_suites_become_envoy_names_the_listener_s_over_the_entry_s() -> None:
    entry = {"TLS": {"Enabled": True, "CipherSuites": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}}
    assert _listener_tls(entry, {})["ciphers"] == ("AES128-GCM-SHA256",)
    own = {"CipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]}
    assert _listener_tls(entry, {"TLS": own})["ciphers"] == ("ECDHE-ECDSA-AES256-GCM-SHA384",)


def test_what_cannot_be_served_is_refused_not_ignored() -> None:
    sds = {"SDS": {"ClusterName": "sds", "CertResource": "c"}}
    for entry, listener in [
        ({"TLS": sds}, {}),
        ({}, {"TLS": sds}),
        ({}, {"Services": [{"Name": "web", "TLS": sds}]}),
    ]:
        with pytest.raises(ValueError, match="SDS"):
            _listener_tls(entry, listener)
        assert _served_tls(entry, listener) is None
    # the entry's suites under the listener's TLS 1.3 minimum (each valid on its own)
    entry = {"TLS": {"Enabled": True, "CipherSuites": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}}
    with pytest.raises(ValueError, match="only applicable to connections negotiated"):
        _listener_tls(entry, {"TLS": {"TLSMinVersion": "TLSv1_3"}})
