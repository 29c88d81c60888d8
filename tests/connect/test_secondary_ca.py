"""A secondary datacenter's CA: its intermediate, signed by the primary's root, signs its
leaves, and a leaf verifies against the primary's root through the intermediate."""

from __future__ import annotations

import time

import pytest
from cryptography import x509

from consulpy.connect import ca, spiffe

CLUSTER = "11111111-2222-3333-4444-555555555555"
TD = spiffe.trust_domain(CLUSTER)


def primary_root() -> dict:
    cfg = ca.normalize_config("consul", {}, cluster_id=CLUSTER)
    return ca.generate_root(CLUSTER, cfg, serial=1, now=time.time())


def test_leaf_of_a_secondary_chains_to_the_primary_root() -> None:
    root = primary_root()
    key_pem, csr = ca.make_intermediate_csr(TD, "dc2")
    pem = ca.sign_intermediate(root, csr, trust_domain=TD, ttl_s=3600, serial=2, now=time.time())
    mine = ca.secondary_root(ca.public_root(root), key_pem, pem)
    assert mine["ID"] == root["ID"] and mine["RootCert"] == root["RootCert"]
    assert ca.intermediate_of(mine) == pem and not ca.intermediate_of(root)
    assert not ca.intermediate_due(pem, time.time())
    assert ca.intermediate_due(pem, time.time() + 3000)  # past 2/3 of its hour
    inter = x509.load_pem_x509_certificate(pem.encode())
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert mine["SigningKeyID"] == ca.colon_hex(
        inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )

    _, leaf_csr = ca.make_csr(spiffe.ServiceID(TD, "default", "dc2", "api").uri())
    leaf = ca.sign_leaf(
        mine,
        leaf_csr,
        trust_domain=TD,
        datacenter="dc2",
        leaf_ttl_s=3600,
        serial=3,
        now=time.time(),
    )
    certs = x509.load_pem_x509_certificates(leaf["CertPEM"].encode())
    assert len(certs) == 2
    top = x509.load_pem_x509_certificate(root["RootCert"].encode())
    certs[1].verify_directly_issued_by(top)
    certs[0].verify_directly_issued_by(certs[1])


def test_an_intermediate_of_another_trust_domain_is_refused() -> None:
    root = primary_root()
    _, csr = ca.make_intermediate_csr("99999999-0000-0000-0000-000000000000.consul", "dc2")
    with pytest.raises(ca.CAError, match="URI SAN"):
        ca.sign_intermediate(root, csr, trust_domain=TD, ttl_s=3600, serial=2, now=time.time())
