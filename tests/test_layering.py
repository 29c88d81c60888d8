"""The import graph of the consulpy package obeys the layering of docs/server-endpoints.md and
DESIGN.md. Every import counts, also the ones inside functions (a lazy import still couples).

To add a rule, append to RULES: (importer prefix, imported prefix, why).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import consulpy

PACKAGE = Path(consulpy.__file__).parent

# (modules under this prefix, must not import this prefix, why)
RULES: list[tuple[str, str, str]] = [
    (
        "consulpy.http",
        "consulpy.state.commands",
        "HTTP handlers build typed endpoint requests; only the server endpoints build FSM commands",
    ),
    (
        "consulpy.agent",
        "consulpy.state.commands",
        "agent parts call server endpoints; only the server endpoints build FSM commands",
    ),
]

# Only these packages may import the module (the FSM command format stays on the servers).
ONLY_FROM: dict[str, tuple[str, ...]] = {
    "consulpy.state.commands": ("consulpy.state", "consulpy.server"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, text: str | None = None) -> set[str]:
    """Every module the file at `path` (or `text`, as if it were there) imports;
    `from a import b` counts as `a` and `a.b` (b may be a submodule)."""
    tree = ast.parse(path.read_text() if text is None else text, str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for importer, imported in sorted(edges.items()):
        for target in sorted(imported):
            for src, dst, why in RULES:
                if _under(importer, src) and _under(target, dst):
                    out.append(f"{importer} imports {target}: {why}")
            for dst, allowed in ONLY_FROM.items():
                if _under(target, dst) and not any(_under(importer, a) for a in allowed):
                    out.append(f"{importer} imports {target}: only {', '.join(allowed)} may")
    return out


def test_the_package_obeys_the_layering() -> None:
    assert violations(graph()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from consulpy.state import commands as C\n",
        "import consulpy.state.commands\n",
        "def f():\n    from consulpy.state.commands import kv\n",
        "from ..state import commands\n",
    ],
)
def test_a_violation_is_caught(source: str) -> None:
    """The checker is not vacuous: each spelling of the forbidden import is found."""
    probe = PACKAGE / "http" / "_layering_probe.py"
    edges = graph()
    edges[module_name(probe)] = imports_of(probe, source)
    assert any(v.startswith("consulpy.http._layering_probe ") for v in violations(edges))
