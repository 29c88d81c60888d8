"""H2PING checks: an HTTP/2 PING round trip, over TLS with ALPN `h2` by default."""

from __future__ import annotations

import asyncio
import os

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.dial import DialError
from consulpy.agent.checks.h2client import H2Client, H2ConnectionLost, goaway_text
from consulpy.agent.checks.runner import Result
from consulpy.agent.checks.status import CRITICAL, PASSING
from consulpy.agent.checks.tls import CheckTLS, client_context


class H2PingProbe:
    def __init__(self, definition: CheckDefinition, *, agent_tls: CheckTLS | None = None):
        self.addr = definition.h2ping
        self.timeout = definition.timeout
        self.server_name = definition.tls_server_name
        self.tls = (
            client_context(
                skip_verify=definition.tls_skip_verify, agent_tls=agent_tls, alpn=("h2",)
            )
            if definition.h2ping_use_tls
            else None
        )

    async def close(self) -> None:
        return None

    async def run(self) -> Result:
        import h2.events
        import h2.exceptions

        client: H2Client | None = None
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    client = await H2Client.connect(
                        self.addr, tls=self.tls, server_name=self.server_name
                    )
                except DialError as exc:
                    return CRITICAL, f"Failed to dial to {self.addr}: {exc}"
                payload = os.urandom(8)
                client.conn.ping(payload)
                await client.flush()
                while True:
                    for event in await client.events():
                        if isinstance(event, h2.events.ConnectionTerminated):
                            raise H2ConnectionLost(goaway_text(event))
                        if (
                            isinstance(event, h2.events.PingAckReceived)
                            and event.ping_data == payload
                        ):
                            return PASSING, "HTTP2 ping was successful"
        except TimeoutError:
            if client is None:
                return CRITICAL, f"Failed to dial to {self.addr}: i/o timeout"
            return CRITICAL, "HTTP2 ping failed: context deadline exceeded"
        except (H2ConnectionLost, OSError) as exc:
            return CRITICAL, f"HTTP2 ping failed: {exc}"
        except h2.exceptions.ProtocolError as exc:
            return CRITICAL, f"HTTP2 ping failed: http2: {exc}"
        finally:
            if client is not None:
                await client.close()
