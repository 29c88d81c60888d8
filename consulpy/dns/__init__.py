"""The DNS interface: `<name>.service.consul` and friends, answered from the catalog.

`server.DNSServer` listens (UDP and TCP); `answer.Responder` turns one request into one
response; `lookup.Lookups` holds every catalog read the DNS path makes.
"""

from consulpy.dns.server import DNSServer
from consulpy.dns.settings import DNSSettings

__all__ = ["DNSServer", "DNSSettings"]
