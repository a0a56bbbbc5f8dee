"""The house has two wings: the rules of the README's Architecture section, read from the imports themselves.

- The core (``service`` outside ``service/api/``) holds no web code and imports nothing from the HTTP wing.
- ``training`` imports only the core.
- A route module imports no other route module (what routes share lives in the wing or in the core).
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


def core_files() -> list[Path]:
    return [p for p in SERVICE.rglob("*.py") if HTTP_WING not in p.parents and p not in ENTRY_POINTS]


def test_the_core_imports_neither_web_libraries_nor_the_http_wing():
    assert core_files(), "no core modules found"
    assert offending(core_files(), WEB_LIBRARIES) == {}


def test_training_imports_only_the_core():
    assert offending(list((ROOT / "training").rglob("*.py")), WEB_LIBRARIES) == {}


def test_route_modules_do_not_import_one_another():
    routes = list((HTTP_WING / "routes").glob("*.py"))
    assert offending(routes, ("service.api.routes",)) == {}


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("from service.api.deps import ModelDep\n", WEB_LIBRARIES),
        ("import fastapi\n", WEB_LIBRARIES),
        ("from .routes import classify\n", ("service.api.routes",)),
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
