"""The documentation site: it builds strictly (no warning), the configuration page lists every setting with its
variable and default, and neither the docs nor the code's comments read as a lab notebook."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from service.api.settings import Settings
from tests.helpers import ROOT

CONFIGURATION = ROOT / "docs" / "configuration.md"
# A project's history belongs in git log: no numbered sessions or issues, no tables of a commit against an older one.
HISTORY = re.compile(
    r"\bsessions? \d|\b(this|that|next|earlier|previous|last) session\b|\bissue #|\bissue \d|\bbefore \(|"
    r"\bmeasured and not kept\b|\bkept in session",
    re.IGNORECASE,
)
CODE = ("service", "training", "bench", "tests", "deploy")
CODE_SUFFIXES = {".py", ".js", ".css", ".html", ".yaml", ".yml"}


def test_the_site_builds_strictly_without_a_warning(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").exists()


def documented_default(value: object) -> str:
    """A setting's default as the configuration page writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return f"`{','.join(value)}`" if value else "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        return f"`{value}`"
    return str(value)


def test_the_configuration_page_lists_every_setting_with_its_variable_and_default():
    rows = {
        cells[1].strip("` "): cells[2].strip()
        for line in CONFIGURATION.read_text().splitlines()
        if line.startswith("| `CONVLENS_") and len(cells := line.split("|")) > 3
    }
    wrong = {
        f"CONVLENS_{name.upper()}": (rows.get(f"CONVLENS_{name.upper()}"), documented_default(field.default))
        for name, field in Settings.model_fields.items()
        if rows.get(f"CONVLENS_{name.upper()}") != documented_default(field.default)
    }
    assert wrong == {}, "rows missing or with another default (documented, actual)"


def test_the_readme_and_the_docs_are_short_of_history():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    found = [(page.name, match.group()) for page in pages for match in HISTORY.finditer(page.read_text())]
    found += [(page.name, "session") for page in pages if re.search(r"\bsessions?\b", page.read_text(), re.I)]
    assert found == []


def test_the_code_comments_and_docstrings_are_short_of_history():
    files = [
        path
        for folder in CODE
        for path in (ROOT / folder).rglob("*")
        if path.suffix in CODE_SUFFIXES and ".venv" not in path.parts
    ]
    found = [
        (path.relative_to(ROOT).as_posix(), match.group())
        for path in files
        for match in HISTORY.finditer(path.read_text(errors="replace"))
    ]
    assert found == []


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
