"""The README's shell examples, read as a newcomer copies them: a file is never written from an error answer, and
an example that needs the (unshipped) variants says how to build them."""

from __future__ import annotations

import re

from tests.helpers import ROOT
from training.config import ACTIVATIONS, OPTIMIZERS

FENCE = re.compile(r"```sh\n(.*?)```", re.DOTALL)
VARIANT = re.compile(rf"\b({'|'.join(ACTIVATIONS)})-({'|'.join(OPTIMIZERS)})\b|/v1/compare/")


def shell_blocks() -> list[tuple[str, str]]:
    """Each ``sh`` block of the README with the paragraph just before it."""
    text = (ROOT / "README.md").read_text()
    blocks, previous_end = [], 0
    for match in FENCE.finditer(text):
        paragraphs = [part for part in text[previous_end : match.start()].split("\n\n") if part.strip()]
        blocks.append((paragraphs[-1] if paragraphs else "", match.group(1)))
        previous_end = match.end()
    return blocks


def commands(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_every_curl_example_that_writes_a_file_fails_on_an_http_error():
    writing = [line for _, block in shell_blocks() for line in commands(block) if "curl " in line and " -o " in line]
    assert writing, "the README has examples that save pictures"
    assert [line for line in writing if not re.search(r"curl -f\w* ", line)] == []


def test_every_example_that_needs_the_variants_names_the_command_that_builds_them():
    needing = [(prose, block) for prose, block in shell_blocks() if any(map(VARIANT.search, commands(block)))]
    assert needing, "the README has examples on the variants"
    for prose, block in needing:
        assert "python -m training sweep" in prose + block or "make variants" in prose + block, block
