"""restorekit's modules import one another in one direction: the import graph has no cycle.

What the test counts as an edge ``a -> b`` (``a`` and ``b`` modules of ``restorekit/``, found with
``ast`` from the source, nothing imported): every ``import`` and ``from ... import`` in ``a``,
at module level, inside functions and methods, and under ``if TYPE_CHECKING:`` alike. A lazy
import inside a function is still a dependency (it only moves when the circle closes), and a
type checker follows the ``TYPE_CHECKING`` ones. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. Not counted: the implicit import of a
package's ``__init__`` when one of its submodules is imported (every submodule would otherwise
reach its package), imports built from strings (``importlib.import_module``, lazy
``"module:attr"`` factories) and third-party modules. The compiled ``_C`` has no source and no
edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import restorekit

ROOT = Path(restorekit.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over restorekit's sources (see the module docstring)."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``[]`` when there is none (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def test_the_finder_sees_a_cycle_and_its_absence():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_and_type_checking_imports():
    graph = import_graph()
    # Imported inside functions only (restorekit.create loads the registry on first use).
    assert "restorekit.registry" in graph["restorekit"]
    # Relative, from a subpackage, and "from . import module" resolved to the module.
    assert "restorekit.checks" in graph["restorekit.degrade.base"]
    assert "restorekit.hookspecs" in graph["restorekit.registry"]
    # Under TYPE_CHECKING (the restorer's Degradation annotations).
    assert "restorekit.degrade" in graph["restorekit.restorer"]
    assert len(graph) > 40


def test_restorekit_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_arrows_point_one_way_for_the_core():
    """The order of the design (errors -> checks -> degrade -> restorer -> registry -> training/cli)."""
    graph = import_graph()
    order = ["restorekit.errors", "restorekit.checks", "restorekit.degrade.base", "restorekit.restorer",
             "restorekit.hookspecs", "restorekit.registry", "restorekit.training.trainers"]
    for i, module in enumerate(order):
        later = set(order[i + 1:])
        assert not graph[module] & later, f"{module} imports {sorted(graph[module] & later)}, to its right"
