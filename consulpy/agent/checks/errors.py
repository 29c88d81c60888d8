"""The one error type of the check package, with a `kind` so the HTTP layer can pick its text.

Consul answers a bad check with different wrappers depending on what is wrong: a missing name
or a bad status is reported bare (`Missing check name`, `Bad check status`), a definition that
fails validation is reported as `Invalid check: <reason>`, a body that does not decode as
`Request decode failed: <reason>`. The message here is always the bare reason.
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["name", "status", "decode", "invalid", "scripts_disabled", "unsupported", "ttl"]


class CheckError(Exception):
    """A check definition or operation the agent must refuse; `str(err)` is Consul's text.

    kind: "name" (missing name), "status" (bad status value), "decode" (a field has the wrong
    type or a duration does not parse), "invalid" (Consul's CheckType.Validate failures; the
    API prefixes these with "Invalid check: "), "scripts_disabled", "unsupported" (a check type
    consulpy cannot run here), "ttl" (a TTL update aimed at a non-TTL check).
    """

    def __init__(self, message: str, *, kind: ErrorKind = "invalid") -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
