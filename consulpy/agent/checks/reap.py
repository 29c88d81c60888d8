"""DeregisterCriticalServiceAfter bookkeeping: which services have been critical too long.

The agent owns check state, so this is a pure ledger it feeds: `track` when a check with the
setting is registered, `observe` every status it applies (including the initial one), and
every `REAP_INTERVAL` it asks `due(now)` which services to deregister. Clock values come
from the caller (loop.time()), which keeps this testable without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from consulpy.agent.checks.status import CRITICAL

REAP_INTERVAL = 30.0
"""How often Consul's agent looks for services to reap (check_reap_interval)."""
MIN_DEREGISTER_AFTER = 60.0
"""Consul's floor on DeregisterCriticalServiceAfter (check_deregister_interval_min)."""


@dataclass
class _Tracked:
    service_id: str
    after: float
    critical_since: float | None = None


class CriticalReaper:
    def __init__(self, min_after: float = MIN_DEREGISTER_AFTER) -> None:
        self.min_after = min_after
        self._checks: dict[str, _Tracked] = {}

    def track(self, check_id: str, service_id: str, after: float) -> None:
        """Watch a service-bound check; `after` <= 0 or no service means "never reap"."""
        if after <= 0 or not service_id:
            self._checks.pop(check_id, None)
            return
        previous = self._checks.get(check_id)
        since = previous.critical_since if previous is not None else None
        self._checks[check_id] = _Tracked(service_id, max(after, self.min_after), since)

    def untrack(self, check_id: str) -> None:
        self._checks.pop(check_id, None)

    def observe(self, check_id: str, status: str, now: float) -> None:
        """Record a status: the clock starts on entering critical, any other status stops it."""
        tracked = self._checks.get(check_id)
        if tracked is None:
            return
        if status != CRITICAL:
            tracked.critical_since = None
        elif tracked.critical_since is None:
            tracked.critical_since = now

    def due(self, now: float) -> list[str]:
        """Services with a check critical for longer than its DeregisterCriticalServiceAfter."""
        services = {
            t.service_id
            for t in self._checks.values()
            if t.critical_since is not None and now - t.critical_since > t.after
        }
        return sorted(services)

    def forget_service(self, service_id: str) -> None:
        """Drop every check of a service (call after deregistering it)."""
        for check_id in [c for c, t in self._checks.items() if t.service_id == service_id]:
            del self._checks[check_id]
