"""SPIFFE identities as Consul Connect writes them into certificate URI SANs.

Every Connect certificate names who it belongs to with one ``spiffe://`` URI: the CA itself
(``spiffe://<trust-domain>``), a service, a client agent, a server or a mesh gateway. Parsing
these is a security decision (the leader signs only what parses as a service in its own trust
domain and datacenter), so the grammar is strict and lives in this one module.

Trust domain = ``<cluster-id>.consul``; the TLD is always ``consul`` whatever the DNS domain,
so renaming the DNS domain never invalidates certificates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

SCHEME = "spiffe"
TRUST_DOMAIN_TLD = "consul"
DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"

# Paths are matched on the *escaped* form, so an escaped "/" (%2F) inside a segment can never
# forge an extra path level; segments are unescaped only after the match.
_SERVICE_PATH = re.compile(r"^(?:/ap/([^/]+))?/ns/([^/]+)/dc/([^/]+)/svc/([^/]+)$")
_AGENT_PATH = re.compile(r"^(?:/ap/([^/]+))?/agent/client/dc/([^/]+)/id/([^/]+)$")
_SERVER_PATH = re.compile(r"^/agent/server/dc/([^/]+)$")
_MESH_GATEWAY_PATH = re.compile(r"^(?:/ap/([^/]+))?/gateway/mesh/dc/([^/]+)$")
# RFC 3986 pchar minus "%" (which quote() handles itself): left as is inside a segment.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"


class SpiffeError(ValueError):
    """A URI that is not a Connect SPIFFE ID (the message says why)."""


def trust_domain(cluster_id: str) -> str:
    """The cluster's trust domain: ``<cluster-id>.consul``, lower-case."""
    return f"{cluster_id}.{TRUST_DOMAIN_TLD}".lower()


def _segment(value: str) -> str:
    return quote(value, safe=_SEGMENT_SAFE)


def _partition_prefix(partition: str) -> str:
    return "" if partition == DEFAULT_PARTITION else f"/ap/{_segment(partition)}"


@dataclass(frozen=True)
class SigningID:
    """The CA's own identity, carried by root and intermediate certificates."""

    cluster_id: str
    domain: str = TRUST_DOMAIN_TLD

    @property
    def host(self) -> str:
        return f"{self.cluster_id}.{self.domain}".lower()

    def uri(self) -> str:
        return f"{SCHEME}://{self.host}"

    def can_sign(self, other: SpiffeID) -> bool:
        """Whether a CA with this identity may issue a certificate for ``other``.

        Hosts compare case-insensitively (they are DNS names); client agents are left out on
        purpose: auto-encrypt rewrites their host instead of refusing them.
        """
        if isinstance(other, SigningID):
            return other.host == self.host
        if isinstance(other, ServiceID | MeshGatewayID | ServerID):
            return other.host.lower() == self.host
        return False


@dataclass(frozen=True)
class ServiceID:
    """A service instance's identity (what sidecar leaf certificates carry)."""

    host: str
    namespace: str
    datacenter: str
    service: str
    partition: str = DEFAULT_PARTITION

    def uri(self) -> str:
        return (
            f"{SCHEME}://{self.host}{_partition_prefix(self.partition)}"
            f"/ns/{_segment(self.namespace)}/dc/{_segment(self.datacenter)}"
            f"/svc/{_segment(self.service)}"
        )


@dataclass(frozen=True)
class AgentID:
    """A client agent's identity (auto-encrypt / auto-config certificates)."""

    host: str
    datacenter: str
    agent: str
    partition: str = DEFAULT_PARTITION

    def uri(self) -> str:
        return (
            f"{SCHEME}://{self.host}{_partition_prefix(self.partition)}"
            f"/agent/client/dc/{_segment(self.datacenter)}/id/{_segment(self.agent)}"
        )


@dataclass(frozen=True)
class ServerID:
    """A server's identity (used by cluster peering)."""

    host: str
    datacenter: str

    def uri(self) -> str:
        return f"{SCHEME}://{self.host}/agent/server/dc/{_segment(self.datacenter)}"


@dataclass(frozen=True)
class MeshGatewayID:
    """A mesh gateway's identity."""

    host: str
    datacenter: str
    partition: str = DEFAULT_PARTITION

    def uri(self) -> str:
        return (
            f"{SCHEME}://{self.host}{_partition_prefix(self.partition)}"
            f"/gateway/mesh/dc/{_segment(self.datacenter)}"
        )


SpiffeID = SigningID | ServiceID | AgentID | ServerID | MeshGatewayID


def service_uri(
    trust_domain: str, datacenter: str, service: str, namespace: str = DEFAULT_NAMESPACE
) -> str:
    """``spiffe://<td>/ns/<ns>/dc/<dc>/svc/<service>``."""
    return ServiceID(trust_domain, namespace, datacenter, service).uri()


def agent_uri(trust_domain: str, datacenter: str, node_id: str) -> str:
    """``spiffe://<td>/agent/client/dc/<dc>/id/<node-id>``."""
    return AgentID(trust_domain, datacenter, node_id).uri()


def server_uri(trust_domain: str, datacenter: str) -> str:
    """``spiffe://<td>/agent/server/dc/<dc>``."""
    return ServerID(trust_domain, datacenter).uri()


def signing_uri(trust_domain: str) -> str:
    """``spiffe://<td>``: the URI SAN of the CA's own certificates."""
    return f"{SCHEME}://{trust_domain.lower()}"


def _unescape(value: str, what: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise SpiffeError(f"Invalid {what}: {exc}") from None


def parse(uri: str) -> SpiffeID:
    """Parse a certificate URI SAN into one of the identity types.

    Raises SpiffeError for anything else: another scheme, a query, fragment, port or user
    info (SPIFFE forbids them), characters outside printable ASCII, or a path that is none of
    the known shapes.
    """
    if not isinstance(uri, str):
        raise SpiffeError(f"SPIFFE ID must be a string, not {type(uri).__name__}")
    # URI SANs are IA5 strings; and urlsplit silently drops tabs and newlines, which would
    # let a certificate's literal URI and its parsed identity differ.
    if not all("!" <= ch <= "~" for ch in uri):
        raise SpiffeError(f"SPIFFE ID must be printable ASCII without spaces: {uri!r}")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise SpiffeError(f"SPIFFE ID is not a valid URI: {exc}") from None
    if parts.scheme.lower() != SCHEME:
        raise SpiffeError("SPIFFE ID must have 'spiffe' scheme")
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise SpiffeError(f"SPIFFE ID must not have a query or fragment: {uri}")
    if port is not None or "@" in parts.netloc:
        raise SpiffeError(f"SPIFFE ID must not have a port or user info: {uri}")
    host = parts.netloc
    path = parts.path

    match = _SERVICE_PATH.match(path)
    if match:
        ap, ns, dc, svc = match.groups()
        return ServiceID(
            host=host,
            namespace=_unescape(ns, "namespace"),
            datacenter=_unescape(dc, "datacenter"),
            service=_unescape(svc, "service"),
            partition=_unescape(ap, "admin partition") if ap else DEFAULT_PARTITION,
        )
    match = _AGENT_PATH.match(path)
    if match:
        ap, dc, agent = match.groups()
        return AgentID(
            host=host,
            datacenter=_unescape(dc, "datacenter"),
            agent=_unescape(agent, "node"),
            partition=_unescape(ap, "admin partition") if ap else DEFAULT_PARTITION,
        )
    match = _MESH_GATEWAY_PATH.match(path)
    if match:
        ap, dc = match.groups()
        return MeshGatewayID(
            host=host,
            datacenter=_unescape(dc, "datacenter"),
            partition=_unescape(ap, "admin partition") if ap else DEFAULT_PARTITION,
        )
    match = _SERVER_PATH.match(path)
    if match:
        return ServerID(host=host, datacenter=_unescape(match.group(1), "datacenter"))
    if path == "":
        cluster_id, dot, domain = host.partition(".")
        if cluster_id and dot and domain:
            return SigningID(cluster_id=cluster_id, domain=domain)
    raise SpiffeError(f"SPIFFE ID is not in the expected format: {uri}")
