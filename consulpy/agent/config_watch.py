"""`auto_reload_config`: watch the config files and directories the agent started with (and
the TLS certificate and key files they name) and reload when one changes, as SIGHUP would.

Polling, not inotify: it needs no dependency, sees files replaced by rename (how editors and
config managers write), and a config dir's new or removed files. Contents are compared, not
only mtimes, so two writes within one timestamp tick are still seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable

import structlog

from consulpy.config.model import AgentConfig
from consulpy.config.sources import format_of

log = structlog.get_logger(__name__)

# Consul re-checks its watched files every second as well.
POLL_INTERVAL = 1.0

Fingerprint = dict[str, str]


def watched_paths(config: AgentConfig) -> list[str]:
    """The files whose change triggers a reload: every -config-file, every config file in
    each -config-dir (what the loader would read, so an editor's swap file does not count),
    and the TLS cert_file/key_file of each listener family."""
    out: list[str] = []
    for path in config.config_paths:
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                names = []
            for name in names:
                full = os.path.join(path, name)
                if os.path.isfile(full) and (config.config_format or format_of(name)):
                    out.append(full)
        else:
            out.append(path)
    for tls in (config.tls, config.tls.https, config.tls.grpc):
        out.extend(p for p in (tls.cert_file, tls.key_file) if p)
    return list(dict.fromkeys(out))


# A digest no file has: a path seen only after a reload had read the config.
_UNREAD = "unread"


def fingerprint(config: AgentConfig) -> Fingerprint:
    """path -> digest of its content ("" when it cannot be read) for every watched path."""
    found: Fingerprint = {}
    for path in watched_paths(config):
        try:
            with open(path, "rb") as f:
                found[path] = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            found[path] = ""
    return found


class ConfigWatcher:
    """Polls the fingerprint of the running config's files; on a difference, calls `reload`
    once (a failure is logged and changes nothing, as with SIGHUP). The next baseline is
    taken from the config in force afterwards, so a config dir's new files are watched."""

    def __init__(
        self,
        current: Callable[[], AgentConfig],
        reload: Callable[[], Awaitable[None]],
        interval: float = POLL_INTERVAL,
    ) -> None:
        self._current = current
        self._reload = reload
        self.interval = interval
        self._seen = fingerprint(current())
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """One poll: reload if a watched file changed since the last poll; True if it did."""
        now = fingerprint(self._current())
        if now == self._seen:
            return False
        changed = sorted(
            p for p in now.keys() | self._seen.keys() if now.get(p) != self._seen.get(p)
        )
        self._seen = now
        log.info("config file changed; reloading", files=changed)
        try:
            await self._reload()
        except Exception as exc:
            log.error("Failed to reload configs", error=str(exc))
        # The reloaded config may name other files (a new cert_file, a file added to a
        # config dir): watch what it names, comparing with the contents that triggered this
        # reload, so a write made while the reload ran triggers the next one. A path that
        # was not there then counts as unread: if it exists at the next poll, that reloads
        # again (at worst once too often; never a file added mid-reload left unapplied).
        after = self._current()
        self._seen = {path: now.get(path, _UNREAD) for path in watched_paths(after)}
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
