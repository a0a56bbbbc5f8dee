"""The shell and Python examples of the README and the docs, read and run as a newcomer copies them: in a fresh shell
(no activated venv) from a folder holding the checkout's ``examples/`` and ``.venv``, against a running service. A
file is never written from an error answer, an example that needs the (unshipped) variants says how to build them,
and every call answers 2xx unless the example's own comment names the status it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, WITH_EXAMPLE
from tests.server import running_service
from training.config import ACTIVATIONS, OPTIMIZERS

FENCE = re.compile(r"```(sh|python)\n(.*?)```", re.DOTALL)
VARIANT = re.compile(rf"\b({'|'.join(ACTIVATIONS)})-({'|'.join(OPTIMIZERS)})\b|/v1/compare/")
DOCUMENTED_URL = "http://127.0.0.1:8000"
DOCUMENTED_HOST = "127.0.0.1:8000"
# What a block may hold to run against the service: calls, the API variable, and the venv's Python writing a body.
RUNNABLE = re.compile(r"^(API=\S+|curl .*|\.venv/bin/python -c .*)$", re.DOTALL)
EXPECTED_STATUS = re.compile(r"#\s*(\d{3})\b")
UNTIL_IMPORTED = "until make import-example"  # the comment of a call on the example network, imported or not
STATUS_MARK = "convlens-example-status"
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"


def pages() -> list[Path]:
    """The README and every page of the docs."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def code_blocks(page: Path) -> list[tuple[str, str, str]]:
    """Each ``sh`` or ``python`` block of ``page`` as (language, the paragraph just before it, the code)."""
    text = page.read_text()
    blocks, previous_end = [], 0
    for match in FENCE.finditer(text):
        paragraphs = [part for part in text[previous_end : match.start()].split("\n\n") if part.strip()]
        blocks.append((match.group(1), paragraphs[-1] if paragraphs else "", match.group(2)))
        previous_end = match.end()
    return blocks


def shell_blocks(page: Path) -> list[tuple[str, str]]:
    """Each ``sh`` block of ``page`` with the paragraph just before it."""
    return [(prose, code) for language, prose, code in code_blocks(page) if language == "sh"]


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined (a quoted argument spanning lines stays one command)."""
    joined = block.replace("\\\n", " ")
    lines, current = [], ""
    for line in joined.splitlines():
        current = f"{current}\n{line}" if current else line
        if current.count('"') % 2 == 0 and current.strip():
            lines.append(current)
            current = ""
    return lines


def needs_variants(block: str) -> bool:
    return any(map(VARIANT.search, commands(block)))


def runnable(block: str) -> bool:
    """A block of calls on the service alone (no builds, containers or training), on the shipped models."""
    lines = commands(block)
    return bool(lines) and not needs_variants(block) and all(RUNNABLE.match(line.strip()) for line in lines)


def all_shell_blocks() -> list[tuple[str, str, str]]:
    return [(page.relative_to(ROOT).as_posix(), prose, code) for page in pages() for prose, code in shell_blocks(page)]


def test_every_curl_example_that_writes_a_file_fails_on_an_http_error():
    writing = [
        line for _, _, block in all_shell_blocks() for line in commands(block) if "curl " in line and " -o " in line
    ]
    assert writing, "the examples save pictures"
    assert [line for line in writing if not re.search(r"curl -f\w* ", line)] == []


def test_every_example_that_needs_the_variants_names_the_command_that_builds_them():
    needing = [(name, prose, block) for name, prose, block in all_shell_blocks() if needs_variants(block)]
    assert needing, "the docs have examples on the variants"
    for name, prose, block in needing:
        assert "-m training sweep" in prose + block or "make variants" in prose + block, (name, block)


def test_every_example_that_runs_python_names_the_venvs_python():
    bare = [
        (name, line)
        for name, _, block in all_shell_blocks()
        for line in commands(block)
        if re.match(r"(python3?|pytest|ruff|convlens-train) ", line.strip())
    ]
    assert bare == []


def run_block(code: str, base: str, folder: Path) -> list[tuple[str, int]]:
    """Run a page's blocks, one after the other as a reader goes down the page, in one fresh shell in ``folder``
    against the service at ``base``: (command, status) of each curl call."""
    script = "\n".join(
        [
            "set -e",
            f'curl() {{ command curl -sS -w "%{{stderr}}{STATUS_MARK} %{{http_code}}\\n" "$@"; echo; }}',
            code.replace(DOCUMENTED_URL, base),
        ]
    )
    env = {"PATH": FRESH_PATH, "HOME": str(folder), "LANG": "C.UTF-8"}
    done = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{code}\nexited {done.returncode}:\n{done.stderr[-2000:]}"
    statuses = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith(STATUS_MARK)]
    calls = [line for line in commands(code) if line.strip().startswith("curl ")]
    assert len(statuses) == len(calls), done.stderr[-2000:]
    return list(zip(calls, statuses))


PAGES_WITH_CALLS = [page for page in pages() if any(runnable(code) for _, code in shell_blocks(page))]
PAGES_WITH_PYTHON = [page for page in pages() if any(language == "python" for language, _, _ in code_blocks(page))]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def service() -> str:
    with running_service() as (base, _):
        yield base


@pytest.fixture
def fresh_folder(tmp_path: Path) -> Path:
    """A folder as a fresh checkout's root looks to an example: the sample images, the shipped models and the venv,
    nothing else."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "models").symlink_to(ROOT / "models")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


@pytest.mark.parametrize("page", PAGES_WITH_CALLS, ids=page_id)
def test_every_shell_example_of_the_page_answers_as_its_comment_says(page: Path, service: str, fresh_folder: Path):
    blocks = [code for _, code in shell_blocks(page) if runnable(code)]
    for call, status in run_block("\n".join(blocks), service, fresh_folder):
        expected = EXPECTED_STATUS.search(call)
        imported = UNTIL_IMPORTED in call and os.environ.get(WITH_EXAMPLE)
        want = int(expected.group(1)) if expected and not imported else None
        assert (status == want) if want else (200 <= status < 300), f"{page.name}: {call} answered {status}"


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=page_id)
def test_every_python_example_of_the_page_runs_with_the_venvs_python(page: Path, service: str, fresh_folder: Path):
    blocks = [code for language, _, code in code_blocks(page) if language == "python"]
    python = fresh_folder / ".venv" / "bin" / "python"
    env = {"PATH": FRESH_PATH, "HOME": str(fresh_folder), **{k: v for k, v in os.environ.items() if k == "LANG"}}
    for code in blocks:
        source = code.replace(DOCUMENTED_HOST, service.removeprefix("http://"))
        done = subprocess.run(
            [str(python), "-c", source], cwd=fresh_folder, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{code}\n{done.stderr[-2000:]}"


def test_the_readme_and_the_pages_of_the_api_have_examples_that_run():
    names = {page_id(page) for page in PAGES_WITH_CALLS}
    assert {"README.md", "docs/api/classify.md", "docs/api/explain.md", "docs/open-inference-protocol.md"} <= names


def test_the_readme_shows_the_range_of_the_service_in_examples_that_run():
    blocks = " ".join(code for _, code in shell_blocks(ROOT / "README.md") if runnable(code))
    for path in ("/v1/classify", "/v1/active-filters/", "/v1/deconvolution/", "/v1/attribution/", "/v2/models/"):
        assert path in blocks, path
