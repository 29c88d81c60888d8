"""TLS client contexts for checks (HTTPS, TCP+TLS, gRPC over TLS, H2PING).

Verification is on by default against the system roots, or against the agent's CA when the
agent is configured to use its own TLS material for checks (`enable_agent_tls_for_checks`);
`TLSSkipVerify` turns it off. Contexts are cached: building one loads the trust store, which is
too slow to repeat for every check run.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class CheckTLS:
    """The agent's TLS material offered to checks (Consul's enable_agent_tls_for_checks)."""

    ca_file: str = ""
    ca_path: str = ""
    cert_file: str = ""
    key_file: str = ""


@lru_cache(maxsize=64)
def client_context(
    *, skip_verify: bool, agent_tls: CheckTLS | None = None, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    if agent_tls is not None and (agent_tls.ca_file or agent_tls.ca_path):
        ctx = ssl.create_default_context(
            cafile=agent_tls.ca_file or None, capath=agent_tls.ca_path or None
        )
    else:
        ctx = ssl.create_default_context()
    if agent_tls is not None and agent_tls.cert_file:
        ctx.load_cert_chain(agent_tls.cert_file, agent_tls.key_file or None)
    if skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
