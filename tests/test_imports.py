"""The dependency rules of docs/architecture: no import cycles (imports inside functions count),
neither between files nor between packages and subpackages, and nothing in the library packages
imports the project package above them.

Packages stand in floors — ``providers``, ``accounts``, ``billing``, the conversation core, its
edges, ``chatproject`` — and each imports only the floors below it: a cycle between two packages
means some arrow runs up, even when no two files import each other."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "billing", "chatproject", "conversations", "providers")
BELOW_THE_PROJECT = ("accounts", "billing", "conversations", "providers")
FLOORS = ("providers", "accounts", "billing", "conversations", "chatproject")  # from the ground up


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict) -> list[str]:
    """The project modules an import statement loads (a name imported from a package may be one)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
        ]
    found = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in imported(module, path, node, modules)
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def packages_of(modules: dict[str, Path]) -> set[str]:
    """The dotted names of the packages (the modules that are an ``__init__.py``)."""
    return {module for module, path in modules.items() if path.name == "__init__.py"}


def node_of(module: str, packages: set[str]) -> str:
    """The package-level node a module belongs to: its package, or — in a package that has
    subpackages (``conversations``) — the module itself (``conversations.models``), so the root of
    such a package is not lumped with everything below it. Its ``__init__`` is ``<package>.__init__``."""

    def has_subpackages(package: str) -> bool:
        return any(other.rpartition(".")[0] == package for other in packages)

    if module in packages:
        return f"{module}.__init__" if has_subpackages(module) else module
    package = module.rpartition(".")[0]
    return module if has_subpackages(package) else package


def contracted(graph: dict[str, set[str]], node: Callable[[str], str]) -> dict[str, set[str]]:
    """The module graph with each module replaced by its node (imports within a node dropped)."""
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        out.setdefault(node(module), set()).update(node(t) for t in targets if node(t) != node(module))
    for targets in list(out.values()):
        for target in targets:
            out.setdefault(target, set())
    return out


def top_package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return contracted(graph, lambda module: module.split(".")[0])


def subpackage_graph(graph: dict[str, set[str]], packages: set[str]) -> dict[str, set[str]]:
    return contracted(graph, lambda module: node_of(module, packages))


def test_the_walk_sees_the_imports_it_must_judge():
    graph = import_graph()
    assert "conversations.turns.running" in graph["conversations.turns.service"]  # a module-level import
    assert "conversations.api.views" in graph["conversations.views.turns"]  # one inside a function


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_cycles_between_packages():
    assert cycles(top_package_graph(import_graph())) == []


def test_no_cycles_between_subpackages():
    assert cycles(subpackage_graph(import_graph(), packages_of(project_modules()))) == []


def test_each_package_imports_only_the_floors_below_it():
    upward = [
        f"{package} -> {target}"
        for package, targets in top_package_graph(import_graph()).items()
        for target in targets
        if FLOORS.index(target) > FLOORS.index(package)
    ]
    assert upward == []


def test_a_package_cycle_would_be_found_where_no_two_files_import_each_other():
    graph = {
        "app.models": {"app.reports.daily"},
        "app.reports.daily": {"app.core.rules"},
        "app.core.rules": set(),
        "app.core.service": {"app.models"},
        "lib.a": {"other.b"},
        "other.b": {"lib.c"},
        "lib.c": set(),
    }
    packages = {"app", "app.reports", "app.core", "lib", "other"}
    assert cycles(graph) == []
    assert cycles(top_package_graph(graph)) == [["lib", "other"]]
    # app/models.py is a node of its own (app has subpackages): models -> reports -> core -> models.
    assert sorted(cycles(subpackage_graph(graph, packages))) == [
        ["app.core", "app.models", "app.reports"],
        ["lib", "other"],
    ]
    assert node_of("app", packages) == "app.__init__" and node_of("app.core", packages) == "app.core"


def test_nothing_below_the_project_package_imports_it():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if module.startswith(BELOW_THE_PROJECT)
        for target in targets
        if target.split(".")[0] == "chatproject"
    ]
    assert upward == []
