"""Dependencies point one way (issue 13, item 3), checked on the source's syntax tree.

Every ``import`` counts, at module level or inside a function, so a cycle cannot hide in a
function body. The graph is between modules of the project's own packages; an import of a package
also counts as an import of its ``__init__``. Checked:

- no import cycle between modules;
- the wings (edge, cloud, kiosk) never import each other;
- ``cloud.db`` imports no other cloud package (each feature declares its own tables);
- nothing on the production path imports ``cloud.synthetic``, apart from the allowances listed;
- the API routers hold no SQL: they call feature functions, never a database's query methods.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cloud", "edge", "kiosk", "protocol", "provisioning")
WINGS = ("cloud", "edge", "kiosk")

#: production modules allowed to import cloud.synthetic, and why
SYNTHETIC_ALLOWED = {
    "cloud.cli": "the `generate` command writes the synthetic demo data set",
}
#: the database's query methods, which routers must leave to the features
QUERY_METHODS = {"execute", "executemany", "query", "scalar", "rows", "one", "copy", "transaction"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (``a.b.c`` may be module ``a.b`` plus a name)."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every project module ``module`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from a import b`` imports module a.b when there is one, else name b of module a
            targets = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is None:
                continue
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            parts = resolved.split(".")
            for i in range(1, len(parts) + 1):
                dependency = ".".join(parts[:i])
                if dependency in _modules() and dependency != module and not module.startswith(dependency + "."):
                    yield dependency


@cache
def _graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(_imported(module, path)) for module, path in _modules().items()}


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("wing", WINGS)
def test_wings_do_not_import_each_other(wing: str) -> None:
    others = [w for w in WINGS if w != wing]
    crossing = sorted(
        f"{module} -> {dependency}"
        for module, dependencies in _graph().items() if module.split(".")[0] == wing
        for dependency in dependencies if dependency.split(".")[0] in others
    )
    assert not crossing


def test_db_imports_no_feature() -> None:
    upward = sorted(
        f"{module} -> {dependency}"
        for module, dependencies in _graph().items() if module == "cloud.db" or module.startswith("cloud.db.")
        for dependency in dependencies
        if dependency.startswith("cloud.") and not (dependency == "cloud.db" or dependency.startswith("cloud.db."))
    )
    assert not upward


def test_production_code_does_not_import_synthetic() -> None:
    found = sorted(
        f"{module} -> {dependency}"
        for module, dependencies in _graph().items()
        if not module.startswith("cloud.synthetic") and module not in SYNTHETIC_ALLOWED
        for dependency in dependencies if dependency == "cloud.synthetic" or dependency.startswith("cloud.synthetic.")
    )
    assert not found


def test_synthetic_allowances_are_still_needed() -> None:
    for module in SYNTHETIC_ALLOWED:
        assert any(d.startswith("cloud.synthetic") for d in _graph()[module]), f"{module} no longer needs its allowance"


def test_routers_hold_no_sql() -> None:
    calls = []
    for module, path in _modules().items():
        if not module.startswith("cloud.api.routers."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in QUERY_METHODS):
                calls.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.func.attr}(")
    assert not calls, "SQL in routers:\n" + "\n".join(calls)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden.py"
    hidden.write_text("def f():\n    from cloud.db.database import Database\n    from . import errors\n", encoding="utf-8")
    assert set(_imported("cloud.hidden", hidden)) == {"cloud.db", "cloud.db.database", "cloud.errors"}
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert _cycles(graph) == [["a", "b", "c"]]
