"""HTTP checks: one request per run, status code mapped to health, body tail as output.

Keep-alives are off (a connection reused across intervals can fail for reasons that say nothing
about the service), redirects are followed by hand so the method and Host rules match Go's
client, and the whole exchange, body included, is bounded by the check's timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urljoin

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.goerrors import dial_text, tls_text
from consulpy.agent.checks.output import TailBuffer
from consulpy.agent.checks.runner import Result
from consulpy.agent.checks.status import CRITICAL, PASSING, WARNING
from consulpy.agent.checks.tls import CheckTLS, client_context

USER_AGENT = "Consul Health Check"
ACCEPT = "text/plain, text/*, */*"
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def status_for_code(code: int) -> str:
    if 200 <= code <= 299:
        return PASSING
    if code == 429:
        return WARNING
    return CRITICAL


class HTTPProbe:
    def __init__(
        self,
        definition: CheckDefinition,
        *,
        output_max_size: int,
        agent_tls: CheckTLS | None = None,
    ) -> None:
        self.url = definition.http
        self.method = (definition.method or "GET").upper()
        self.body = definition.body.encode() if definition.body else None
        self.timeout = definition.timeout
        self.disable_redirects = definition.disable_redirects
        self.server_name = definition.tls_server_name
        self.output_max_size = output_max_size
        self.tls = client_context(skip_verify=definition.tls_skip_verify, agent_tls=agent_tls)
        headers: CIMultiDict[str] = CIMultiDict()
        for name, values in definition.header.items():
            for value in values:
                headers.add(name, value)
        headers.setdefault("User-Agent", USER_AGENT)
        headers.setdefault("Accept", ACCEPT)
        self.headers = headers
        self._session: aiohttp.ClientSession | None = None

    def _op(self, method: str) -> str:
        return method[:1] + method[1:].lower()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _session_for_run(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(force_close=True, ssl=self.tls)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("Content-Type",),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def run(self) -> Result:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            url = URL(self.url, encoded=False)
        except (ValueError, TypeError) as exc:
            return CRITICAL, f'parse "{self.url}": {exc}'
        if url.scheme not in ("http", "https"):
            return CRITICAL, (
                f'{self._op(self.method)} "{self.url}": unsupported protocol scheme "{url.scheme}"'
            )
        if not url.host:
            return CRITICAL, f'{self._op(self.method)} "{self.url}": http: no Host in request URL'
        session = self._session_for_run()
        method, body = self.method, self.body
        headers = CIMultiDict(self.headers)
        original_host = url.host
        current = url
        redirects = 0
        while True:
            op_url = str(current)
            try:
                async with asyncio.timeout_at(deadline):
                    resp = await session.request(
                        method,
                        current,
                        data=body,
                        headers=headers,
                        allow_redirects=False,
                        server_hostname=(self.server_name or None)
                        if current.scheme == "https"
                        else None,
                    )
            except TimeoutError:
                return CRITICAL, (
                    f'{self._op(method)} "{op_url}": context deadline exceeded '
                    "(Client.Timeout exceeded while awaiting headers)"
                )
            except aiohttp.ClientError as exc:
                return CRITICAL, f'{self._op(method)} "{op_url}": {self._error_text(current, exc)}'
            location = resp.headers.get("Location")
            if self.disable_redirects or resp.status not in _REDIRECTS or not location:
                return await self._result(resp, deadline)
            resp.release()
            redirects += 1
            try:
                current = URL(urljoin(op_url, location))
            except ValueError as exc:
                return CRITICAL, f'{self._op(method)} "{op_url}": {exc}'
            if redirects > MAX_REDIRECTS:
                return CRITICAL, (
                    f'{self._op(method)} "{current}": stopped after {MAX_REDIRECTS} redirects'
                )
            if resp.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, body = "GET", None
            if current.host != original_host:
                headers.popall("Host", None)

    async def _result(self, resp: aiohttp.ClientResponse, deadline: float) -> Result:
        buf = TailBuffer(self.output_max_size)
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in resp.content.iter_chunked(16384):
                    buf.write(chunk)
        except (TimeoutError, aiohttp.ClientError):
            pass  # Consul keeps what arrived; the status code still decides
        finally:
            resp.release()
        reason = resp.reason or ""
        status_line = f"{resp.status} {reason}".rstrip()
        output = f"HTTP {self.method} {self.url}: {status_line} Output: {buf.text()}"
        return status_for_code(resp.status), output

    def _error_text(self, url: URL, exc: aiohttp.ClientError) -> str:
        addr = f"{url.host}:{url.port}" if url.port else str(url.host)
        if ":" in (url.host or ""):
            addr = f"[{url.host}]:{url.port}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            cert_error = exc.certificate_error
            if isinstance(cert_error, ssl.SSLError | ssl.CertificateError):
                return tls_text(cert_error)
            return f"tls: failed to verify certificate: {cert_error}"
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return tls_text(exc.os_error) if isinstance(exc.os_error, ssl.SSLError) else str(exc)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return dial_text("tcp", addr, exc.os_error)
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "EOF"
        if isinstance(exc, aiohttp.ClientOSError):
            return dial_text("tcp", addr, exc)
        return str(exc) or type(exc).__name__
