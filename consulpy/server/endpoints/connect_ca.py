"""ConnectCA: roots and configuration reads, ConnectCA.ConfigurationSet (rotation) and
ConnectCA.Sign, both on the leader. CA changes reach the log only through here and the
leader's own CA bootstrap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import authorize
from consulpy.server.endpoints.base import leader, read
from consulpy.server.endpoints.request import Request
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
    authorize(req.token, "operator", "write")
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
    authorize(req.token, "service:*", "write")  # the ACL issue narrows this to the CSR's service
    return await _ca_call(server.ca.sign, req.payload.csr)


ENDPOINTS = [
    read("ConnectCA.Roots", reads.ca_roots),
    read("ConnectCA.Config", reads.ca_config),
    leader("ConnectCA.ConfigurationSet", CAConfigurationSet, configuration_set),
    leader("ConnectCA.Sign", CASign, sign),
]
