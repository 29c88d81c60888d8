"""consulpy/acl is a pure library: servers, HTTP handlers and agents import it, never the
reverse (checked on the source, so function-level imports count too)."""

from __future__ import annotations

from tests.test_layering import PACKAGE, _consulpy_imports

FORBIDDEN = ("consulpy.server", "consulpy.http", "consulpy.agent", "consulpy.state")


def test_acl_imports_no_server_http_agent_or_state() -> None:
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path in sorted((PACKAGE / "acl").rglob("*.py"))
        for line, target in _consulpy_imports(path)
        if any(target == f or target.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offending == [], "\n".join(offending)
