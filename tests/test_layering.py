"""The layering of docs/architecture.md, checked on the source with `ast` (nothing is imported,
so function-level and `if TYPE_CHECKING:` imports count as much as module-level ones)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "consulpy"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _consulpy_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every consulpy import in one file, wherever it sits."""
    module = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from consulpy import http` imports the module consulpy.http
            for alias in node.names:
                sub = PACKAGE.parent.joinpath(*target.split("."), alias.name)
                if sub.is_dir() or sub.with_suffix(".py").exists():
                    yield node.lineno, f"{target}.{alias.name}"


def _top_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "consulpy" and len(parts) > 1 else None


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        src = _top_package(_module_name(path))
        if src is None:
            continue
        for _, target in _consulpy_imports(path):
            dst = _top_package(target)
            if dst is not None and dst != src and (PACKAGE / dst).exists():
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one package."""
    nodes = set(graph) | {d for ds in graph.values() for d in ds}
    reach = {n: _reachable(graph, n) for n in nodes}
    seen: set[str] = set()
    found = []
    for n in sorted(nodes):
        if n in seen:
            continue
        comp = {m for m in reach[n] if n in reach[m]} | {n}
        seen |= comp
        if len(comp) > 1:
            found.append(comp)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    out: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


def test_agent_never_imports_http() -> None:
    """consulpy/http may import consulpy/agent, never the reverse (the composition root,
    consulpy/runtime.py, is where the two meet)."""
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path in sorted((PACKAGE / "agent").rglob("*.py"))
        for line, target in _consulpy_imports(path)
        if target == "consulpy.http" or target.startswith("consulpy.http.")
    ]
    assert offending == [], "consulpy/agent imports consulpy/http:\n" + "\n".join(offending)


def test_no_import_cycle_between_agent_and_http() -> None:
    cycles = _cycles(_package_graph())
    report = "; ".join(" <-> ".join(sorted(c)) for c in cycles) or "none"
    print(f"cycles between consulpy's top-level packages: {report}")
    assert not any({"agent", "http"} <= c for c in cycles), report


def test_the_layering_checks_see_function_level_imports() -> None:
    """The checks above would miss nothing: an import inside a function is found."""
    sample = PACKAGE / "agent" / "agent.py"
    found = {target for _, target in _consulpy_imports(sample)}
    assert "consulpy.util.decode" in found  # imported inside Agent.register_check
