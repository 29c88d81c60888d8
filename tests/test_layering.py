"""The layering of docs/architecture.md and docs/server-endpoints.md, checked on the source with
`ast` (nothing is imported, so function-level and `if TYPE_CHECKING:` imports count as much as
module-level ones).

To forbid an import, append to RULES: (importer prefix, imported prefix, why); to reserve a
module for some packages, add it to ONLY_FROM.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "consulpy"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _consulpy_imports(path: Path, text: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every consulpy import in one file (or in `text`, as if it
    were that file), wherever it sits."""
    module = _module_name(path)
    source = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(source, str(path))):
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


def test_agent_never_imports_xds() -> None:
    """consulpy/xds turns the agent's proxy snapshots into Envoy resources: it imports
    consulpy/agent (the snapshot types, the lookup), never the reverse, so the agent builds
    and watches snapshots without Envoy's protobufs."""
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path in sorted((PACKAGE / "agent").rglob("*.py"))
        for line, target in _consulpy_imports(path)
        if _under(target, "consulpy.xds")
    ]
    assert offending == [], "consulpy/agent imports consulpy/xds:\n" + "\n".join(offending)


def test_no_import_cycle_between_agent_and_http() -> None:
    cycles = _cycles(_package_graph())
    report = "; ".join(" <-> ".join(sorted(c)) for c in cycles) or "none"
    print(f"cycles between consulpy's top-level packages: {report}")
    assert not any({"agent", "http"} <= c for c in cycles), report
    assert not any({"agent", "xds"} <= c for c in cycles), report


def test_the_layering_checks_see_function_level_imports() -> None:
    """The checks above would miss nothing: an import inside a function is found."""
    sample = PACKAGE / "agent" / "agent.py"
    found = {target for _, target in _consulpy_imports(sample)}
    assert "consulpy.util.decode" in found  # imported inside Agent.register_check


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


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(edges: dict[str, set[str]]) -> list[str]:
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


def _module_graph() -> dict[str, set[str]]:
    return {
        _module_name(p): {target for _, target in _consulpy_imports(p)}
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def test_fsm_commands_are_built_only_on_the_servers() -> None:
    """consulpy.state.commands (the FSM command format) is imported by consulpy/state and
    consulpy/server only: HTTP handlers and agent parts call server endpoints by name."""
    assert _violations(_module_graph()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from consulpy.state import commands as C\n",
        "import consulpy.state.commands\n",
        "def f():\n    from consulpy.state.commands import kv\n",
        "from ..state import commands\n",
    ],
)
def test_every_spelling_of_the_commands_import_is_caught(source: str) -> None:
    probe = PACKAGE / "http" / "_layering_probe.py"
    edges = _module_graph()
    edges[_module_name(probe)] = {target for _, target in _consulpy_imports(probe, source)}
    assert any(v.startswith("consulpy.http._layering_probe ") for v in _violations(edges))


def test_metrics_imports_nothing_else_from_consulpy() -> None:
    """consulpy/metrics sits below every layer that records into it (raft and gossip get its
    recorder handed in), so it must not import any of them."""
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path in sorted((PACKAGE / "metrics").rglob("*.py"))
        for line, target in _consulpy_imports(path)
        if _under(target, "consulpy") and not _under(target, "consulpy.metrics")
    ]
    assert offending == [], "\n".join(offending)


# Programs that run gossip agents as processes (the benchmark's agent and its launcher), not
# the protocol itself: they may use consulpy's process helpers.
GOSSIP_PROGRAMS = {"agent_main.py", "procs.py"}


@pytest.mark.parametrize("package", ["raft", "gossip"])
def test_protocol_cores_import_nothing_else_from_consulpy(package: str) -> None:
    """DESIGN.md: consulpy/raft and consulpy/gossip are protocol libraries that import
    nothing of consulpy (what they need, such as a metrics recorder, is handed in)."""
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        if not (package == "gossip" and path.name in GOSSIP_PROGRAMS)
        for line, target in _consulpy_imports(path)
        if _under(target, "consulpy") and not _under(target, f"consulpy.{package}")
    ]
    assert offending == [], "\n".join(offending)
