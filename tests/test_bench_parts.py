"""The bench's parts that need no load: its results writer, and the bench standing on its own (it imports nothing
from the tests)."""

import ast
import json

from bench.results import write_results
from tests.helpers import ROOT


def test_write_results_makes_the_folder_and_writes_the_document_as_indented_json(tmp_path):
    document = {"machine": {"cores": 2}, "rows": [{"measure": "p50", "value": 1.5}], "markdown": "| a |"}
    path = write_results(tmp_path / "new" / "folder" / "name.json", document)
    assert path == tmp_path / "new" / "folder" / "name.json"
    assert json.loads(path.read_text()) == document
    assert path.read_text() == json.dumps(document, indent=2) + "\n"


def test_write_results_replaces_an_older_results_file(tmp_path):
    path = tmp_path / "soak.json"
    write_results(path, {"passed": False, "verdict": {"no_5xx": False}})
    write_results(path, {"passed": True})
    assert json.loads(path.read_text()) == {"passed": True}


def test_no_bench_module_imports_the_tests():
    importing = {}
    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(name == "tests" or name.startswith("tests.") for name in names):
                importing.setdefault(path.relative_to(ROOT).as_posix(), []).extend(names)
    assert importing == {}
