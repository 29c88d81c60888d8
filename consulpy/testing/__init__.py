"""Helpers for testing code against a real consulpy agent.

`DevAgent` runs a dev agent (in-memory server, HTTP on 127.0.0.1 with an OS-chosen port)
either in the current event loop (`async with DevAgent() as agent:`; the caller's loop, so
run the test on uvloop to test what `consulpy agent` runs) or in a background thread with its
own loop (`with DevAgent().in_thread() as agent:`), which is what synchronous
clients such as py-consul need. The pytest plugin (`consulpy.testing.pytest_plugin`) wraps
it in fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from consulpy.agent.agent import Agent
from consulpy.config import load_agent_config
from consulpy.runtime import Runtime
from consulpy.util.eventloop import loop_factory
from consulpy.util.hostport import join_host_port, split_host_port


class DevAgent:
    def __init__(
        self,
        node_name: str = "consulpy-test",
        datacenter: str = "dc1",
        flags: Sequence[str] = (),
        config: dict[str, Any] | None = None,
        check_min_interval: float | None = None,
    ) -> None:
        argv = [
            "-dev",
            f"-node={node_name}",
            f"-datacenter={datacenter}",
            "-client=127.0.0.1",
            "-bind=127.0.0.1",
            "-http-port=0",
            "-server-port=0",
            "-serf-lan-port=0",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            "-grpc-port=-1",
            "-log-level=warn",
            *flags,
        ]
        extra = [config] if config else []
        self.config = load_agent_config(argv, extra_sources=extra)
        self.check_min_interval = check_min_interval
        self.runtime: Runtime | None = None
        self.agent: Agent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ addresses
    @property
    def http_addr(self) -> str:
        assert self.agent is not None and self.agent.http_addresses, "agent not started"
        host, port = self.agent.http_addresses[0]
        return join_host_port(host, port)

    @property
    def url(self) -> str:
        """The plain HTTP URL, or the HTTPS one when the agent serves only HTTPS."""
        if self.agent is not None and not self.agent.http_addresses:
            return self.https_url
        return f"http://{self.http_addr}"

    @property
    def https_addr(self) -> str:
        """host:port of the HTTPS API (ports.https, e.g. `-https-port=0`)."""
        assert self.runtime is not None and self.runtime.http.https_addresses, "no HTTPS"
        host, port = self.runtime.http.https_addresses[0]
        return join_host_port(host, port)

    @property
    def https_url(self) -> str:
        return f"https://{self.https_addr}"

    def client_env(self) -> dict[str, str]:
        """The environment a Consul CLI or the `consulpy` CLI needs to reach this agent:
        CONSUL_HTTP_ADDR (https:// when only HTTPS is served) and CONSUL_CACERT (tls.https
        ca_file). Client certificates are the caller's to add (CONSUL_CLIENT_CERT/KEY)."""
        env = {"CONSUL_HTTP_ADDR": self.url}
        ca = self.config.tls.https.ca_file
        if self.url.startswith("https://") and ca:
            env["CONSUL_CACERT"] = ca
        return env

    @property
    def host(self) -> str:
        return split_host_port(self.http_addr)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.http_addr)[1]

    # ------------------------------------------------------- in this loop
    async def start(self) -> DevAgent:
        self.runtime = Runtime(self.config, check_min_interval=self.check_min_interval)
        self.agent = self.runtime.agent
        await self.runtime.start()
        await self.agent.wait_ready()
        return self

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()

    async def __aenter__(self) -> DevAgent:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -------------------------------------------------- in its own thread
    @contextlib.contextmanager
    def in_thread(self) -> Iterator[DevAgent]:
        """Run the agent on a private event loop in a daemon thread, of the kind its
        `event_loop` setting names (as `consulpy agent` would run it)."""
        loop = loop_factory(self.config.event_loop)()
        ready = threading.Event()
        thread = threading.Thread(target=self._serve, args=(loop, ready), daemon=True)
        thread.start()
        ready.wait()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            self._loop = loop
            yield self
        finally:
            if self.agent is not None:
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
            self._loop = None

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the agent's loop (thread mode) and return its result."""
        assert self._loop is not None, "call() needs in_thread()"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)
