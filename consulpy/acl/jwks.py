"""JWKS key sets for the `jwt` auth method's `JWKSURL`: fetched over HTTP(S) with a bounded
timeout, cached per (URL, CA), and refetched when a token names a key id (`kid`) the cached set
lacks, so an issuer's key rotation works without waiting for the cache to age out.

Fetching is asyncio (aiohttp); nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

FETCH_TIMEOUT = 10.0  # seconds for one whole fetch
MAX_BYTES = 1 << 20  # a JWKS document larger than this is refused
CACHE_TTL = 3600.0  # a cached set is refetched after this long even without an unknown kid


@dataclass
class _Entry:
    keys: dict[str | None, Any]
    fetched: float


@dataclass
class JWKSCache:
    """Key sets by (url, ca_pem); one fetch at a time per set."""

    ttl: float = CACHE_TTL
    _entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    async def keys(self, url: str, ca_pem: str, kid: str | None) -> list[Any]:
        """The verification keys for a token with this `kid` (all keys when it has none)."""
        slot = (url, ca_pem)
        lock = self._locks.setdefault(slot, asyncio.Lock())
        async with lock:
            entry = self._entries.get(slot)
            stale = entry is None or time.monotonic() - entry.fetched > self.ttl
            if stale or (kid is not None and kid not in entry.keys):  # type: ignore[union-attr]
                entry = _Entry(await fetch(url, ca_pem), time.monotonic())
                self._entries[slot] = entry
        if kid is None:
            return list(entry.keys.values())
        return [entry.keys[kid]] if kid in entry.keys else []


def ssl_context(ca_pem: str) -> ssl.SSLContext | None:
    """The TLS context for a fetch: the system roots, or only `JWKSCACert` when given."""
    if not ca_pem:
        return None
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"JWKSCACert is not a valid PEM certificate: {exc}") from exc


async def fetch(url: str, ca_pem: str) -> dict[str | None, Any]:
    """GET the JWKS document and parse its usable keys by `kid`; failures are ValueError."""
    context = ssl_context(ca_pem)
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=context if context is not None else True) as resp,
        ):
            if resp.status != 200:
                raise ValueError(f"fetching keys from JWKSURL: HTTP {resp.status}")
            body = await resp.content.read(MAX_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ValueError(f"fetching keys from JWKSURL: {exc or type(exc).__name__}") from exc
    if len(body) > MAX_BYTES:
        raise ValueError("fetching keys from JWKSURL: document too large")
    try:
        keyset = jwt.PyJWKSet.from_json(body.decode())
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"parsing keys from JWKSURL: {exc}") from exc
    return {key.key_id: key.key for key in keyset.keys}


CACHE = JWKSCache()
