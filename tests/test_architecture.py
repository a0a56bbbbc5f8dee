"""The house has two wings over one core in rooms: the rules of the architecture page, read from the imports.

- The core (``service`` outside ``service/api/``) holds no web code and imports nothing from the HTTP wing.
- ``training`` imports only the core.
- The core's rooms stand on one another in one direction: bytes in (``images``) and pictures out (``pictures``) know
  nothing of the studies, the attribution methods or the graphs; the runtime knows only the contract and the
  core's errors; the graphs know no studies and no attribution method; the quality metrics take the model as
  callables and know no studies, runtime or graphs.
- A route module imports no other route module, and no middleware imports a route.
- Nothing shipped (``service``, ``training``) imports ``bench``, ``tests`` or ``references`` (the peers' code that
  checks us: PyTorch, Captum); ``bench`` imports no ``tests``.
- No module imports itself back through others: the import graph of ``service``, ``training`` and ``bench`` has no
  cycle, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

SERVICE = ROOT / "service"
HTTP_WING = SERVICE / "api"
ENTRY_POINTS = {SERVICE / "__main__.py"}  # starts uvicorn on the HTTP wing's app
WEB_LIBRARIES = ("fastapi", "starlette", "uvicorn", "multipart", "prometheus_client", "service.api")
STUDIES_AND_ABOVE = ("service.studies", "service.attribution", "service.graphs", "service.api")
# room -> the rooms of the core it must not import
ROOM_RULES = {
    "images": STUDIES_AND_ABOVE,
    "pictures": STUDIES_AND_ABOVE,
    "featuremaps": (*STUDIES_AND_ABOVE, "service.runtime"),
    "runtime": (*STUDIES_AND_ABOVE, "service.images", "service.pictures", "service.featuremaps"),
    "graphs": ("service.studies", "service.attribution", "service.api"),
    "quality": ("service.studies", "service.api", "service.runtime", "service.graphs"),
}


def module_name(path: Path) -> str:
    """``service/api/app.py`` -> ``service.api.app``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (``from . import x`` resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """For each file importing a forbidden module (or a submodule of one), which ones."""
    found = {}
    for path in paths:
        bad = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[path.relative_to(ROOT).as_posix()] = bad
    return found


def imported_targets(path: Path, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that ``path`` imports: ``from a import b`` points at module ``a.b`` when it is
    one (a package's submodule), else at ``a``; a name inside a module points at that module."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_cycles(paths: list[Path]) -> list[list[str]]:
    """The cycles of the module graph over ``paths`` (an edge: a module imports another of them, at module level or
    inside a function), each as the sorted list of its modules; Tarjan's strongly connected components."""
    modules = {module_name(p): p for p in paths}
    graph = {name: imported_targets(path, set(modules)) - {name} for name, path in modules.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def core_files() -> list[Path]:
    return [p for p in SERVICE.rglob("*.py") if HTTP_WING not in p.parents and p not in ENTRY_POINTS]


def test_the_core_imports_neither_web_libraries_nor_the_http_wing():
    assert core_files(), "no core modules found"
    assert offending(core_files(), WEB_LIBRARIES) == {}


def test_training_imports_only_the_core():
    assert offending(python_files("training"), WEB_LIBRARIES) == {}


@pytest.mark.parametrize("room", sorted(ROOM_RULES))
def test_a_lower_room_imports_nothing_above_it(room):
    files = list((SERVICE / room).rglob("*.py"))
    assert files, f"service/{room} has no modules"
    assert offending(files, ROOM_RULES[room]) == {}


def test_route_modules_do_not_import_one_another():
    assert offending(list((HTTP_WING / "routes").glob("*.py")), ("service.api.routes",)) == {}


def test_middleware_imports_no_route():
    assert offending(list((HTTP_WING / "middleware").glob("*.py")), ("service.api.routes",)) == {}


def test_nothing_shipped_imports_bench_tests_or_references():
    assert offending(python_files("service", "training"), ("bench", "tests", "references")) == {}


def test_bench_imports_no_tests():
    assert offending(python_files("bench"), ("tests",)) == {}


def test_there_is_no_import_cycle():
    assert import_cycles(python_files("service", "training", "bench")) == []


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("from service.api.deps import ModelDep\n", WEB_LIBRARIES),
        ("import fastapi\n", WEB_LIBRARIES),
        ("from .routes import classify\n", ("service.api.routes",)),
        ("from tests.helpers import ROOT\n", ("bench", "tests")),
    ],
)
def test_the_import_reader_catches_a_forbidden_import(tmp_path, source, rule):
    """The checker itself can fail: a planted forbidden import in a module under service/api is reported."""
    planted = HTTP_WING / f"_planted_{tmp_path.name}.py"
    planted.write_text(source)
    try:
        assert offending([planted], rule) != {}
    finally:
        planted.unlink()


def test_the_cycle_finder_catches_a_cycle_through_a_function_level_import(tmp_path, monkeypatch):
    """The checker itself can fail: two planted modules that import each other (one inside a function) are a cycle,
    and a chain without a way back is not."""
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted.b import helper\n")
    (package / "b.py").write_text("def helper():\n    from planted import a\n    return a\n")
    (package / "c.py").write_text("from planted import a\n")
    monkeypatch.setattr("tests.test_architecture.ROOT", tmp_path)
    files = list(package.glob("*.py"))
    assert import_cycles(files) == [["planted.a", "planted.b"]]
    (package / "b.py").write_text("def helper():\n    return 1\n")
    assert import_cycles(files) == []
