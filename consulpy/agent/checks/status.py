"""Check statuses and the SuccessBeforePassing / FailuresBefore* filter.

The filter is what keeps a flapping check from flapping the catalog: results only become the
check's status after enough consecutive agreeing runs. Counters start "satisfied" so the first
result of a new check applies at once (a fresh check should not sit in its registration status
for N intervals).
"""

from __future__ import annotations

PASSING = "passing"
WARNING = "warning"
CRITICAL = "critical"
STATUSES = (PASSING, WARNING, CRITICAL)


def is_valid_status(status: str) -> bool:
    return status in STATUSES


class StatusFilter:
    """Consul's StatusHandler as a pure object: feed results, get back what to apply.

    A `passing` or `warning` result is a success (a script exiting 1 reports `warning`, but the
    run worked); `critical` is a failure. Successes reset the failure count and vice versa.
    A failure becomes `critical` after `failures_before_critical` consecutive failures, and
    `warning` once `failures_before_warning` (defaulting to the critical threshold) is reached.
    """

    def __init__(
        self,
        success_before_passing: int = 0,
        failures_before_warning: int = 0,
        failures_before_critical: int = 0,
    ) -> None:
        self.success_before_passing = max(0, success_before_passing)
        self.failures_before_critical = max(0, failures_before_critical)
        # Consul's agent defaults the warning threshold to the critical one when unset.
        self.failures_before_warning = max(0, failures_before_warning) or (
            self.failures_before_critical
        )
        self._successes = self.success_before_passing
        self._failures = self.failures_before_critical

    def apply(self, status: str, output: str) -> tuple[str, str] | None:
        """The (status, output) to apply for this result, or None to keep the current one."""
        if status in (PASSING, WARNING):
            self._successes += 1
            self._failures = 0
            if self._successes >= self.success_before_passing:
                return status, output
            return None
        self._failures += 1
        self._successes = 0
        if self._failures >= self.failures_before_critical:
            return status, output
        if self._failures >= self.failures_before_warning:
            return WARNING, output
        return None
