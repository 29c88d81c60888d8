"""The one exception of the filter package, and the go-bexpr style position prefix.

Consul answers a bad `?filter=` with `Failed to create boolean expression evaluator: <detail>`;
the HTTP layer adds that prefix, `str(FilterError)` is the detail. Syntax errors carry the
`line:column (byte offset)` prefix that go-bexpr's generated parser prints, so users who have
seen Consul's messages recognise ours.
"""

from __future__ import annotations


class FilterError(ValueError):
    """A filter expression that cannot be compiled. `offset` is the character index of the
    problem in the expression, when the problem has a place (syntax errors do)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def position_prefix(source: str, offset: int) -> str:
    """`line:col (byte offset)` for a character index, 1-based line and column as go-bexpr."""
    before = source[:offset]
    line = before.count("\n") + 1
    col = offset - (before.rfind("\n") + 1) + 1
    return f"{line}:{col} ({len(before.encode('utf-8', 'surrogatepass'))})"


def syntax_error(source: str, offset: int, detail: str) -> FilterError:
    return FilterError(f"{position_prefix(source, offset)}: {detail}", offset)
