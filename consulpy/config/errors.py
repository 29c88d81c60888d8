"""The one exception type of the config package.

Every problem (unreadable file, syntax error, unknown key, bad value, contradicting settings)
becomes a `ConfigError` whose text can be printed to the user as-is, because the agent and
`consulpy validate` both just print it and exit 1.
"""

from __future__ import annotations


class ConfigError(Exception):
    """Invalid agent configuration. `errors` holds one line per problem found."""

    def __init__(self, message: str | list[str]) -> None:
        self.errors: list[str] = [message] if isinstance(message, str) else list(message)
        super().__init__("\n".join(self.errors))
