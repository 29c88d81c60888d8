"""ConnectCA: roots and configuration reads, ConnectCA.ConfigurationSet (rotation) and
ConnectCA.Sign, both on the leader. CA changes reach the log only through here and the
leader's own CA bootstrap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import leader, read
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, RequestError

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class CAConfigurationSet:
    provider: str
    config: dict[str, Any] = field(default_factory=dict)
    force_without_cross_signing: bool = False


@dataclass(frozen=True, slots=True)
class CASign:
    csr: str  # PEM


async def _ca_call(fn: Any, *args: Any) -> Any:
    """CA refusals (bad CSR, bad configuration, Connect disabled) are CommandErrors."""
    from consulpy.connect.ca import CAError
    from consulpy.server.connect_ca import ConnectNotEnabled

    try:
        return await fn(*args)
    except (CAError, ConnectNotEnabled) as exc:
        raise CommandError(str(exc)) from exc


async def configuration_set(server: Server, req: Request[CAConfigurationSet]) -> None:
    authorize(req.token, Resource.OPERATOR, "", Access.WRITE)
    p = req.payload
    body = {
        "Provider": p.provider,
        "Config": p.config,
        "ForceWithoutCrossSigning": p.force_without_cross_signing,
    }
    await _ca_call(server.ca.set_config, body)


async def sign(server: Server, req: Request[CASign]) -> Any:
    if not req.payload.csr:
        raise RequestError("CSR is required")
    # service:write on the service the CSR names (its SPIFFE URI SAN, checked by the signer).
    authorize(req.token, Resource.SERVICE, csr_service(req.payload.csr), Access.WRITE)
    return await _ca_call(server.ca.sign, req.payload.csr)


async def sign_intermediate(server: Server, req: Request[CASign]) -> Any:
    """A secondary datacenter's leader asks the primary to sign its intermediate CA
    (operator:write, as Consul's ConnectCA.SignIntermediate; the replication token)."""
    if not req.payload.csr:
        raise RequestError("CSR is required")
    authorize(req.token, Resource.OPERATOR, "", Access.WRITE)
    return await _ca_call(server.ca.sign_intermediate, req.payload.csr)


def csr_service(csr_pem: str) -> str:
    """The service of a CSR's SPIFFE URI SAN ("" when it has none or does not parse: the
    signer refuses it after)."""
    try:
        from cryptography import x509

        csr = x509.load_pem_x509_csr(csr_pem.encode())
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except Exception:  # any parse failure: the signer reports it with Consul's text
        return ""
    for uri in uris:
        _, sep, name = uri.rpartition("/svc/")
        if sep:
            return name
    return ""


ENDPOINTS = [
    # Roots are public (no ACL); the CA configuration needs operator:write even to read.
    read("ConnectCA.Roots", Empty, reads.ca_roots, lambda _s, _p: []),
    read(
        "ConnectCA.Config",
        Empty,
        reads.ca_config,
        lambda _s, _p: [Need(Resource.OPERATOR, "", Access.WRITE)],
    ),
    leader("ConnectCA.ConfigurationSet", CAConfigurationSet, configuration_set),
    leader("ConnectCA.Sign", CASign, sign),
    leader("ConnectCA.SignIntermediate", CASign, sign_intermediate),
]
