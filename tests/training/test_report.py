"""`python -m training report` on the shipped models and statistics writes the report and every figure it lists;
with a sweep's variants beside them it adds their comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import MODELS, link_shipped_models
from training.__main__ import main
from training.report import Report

FIGURES = [
    "training-curves",
    "confusion-matrix",
    "active-filters-one-image",
    *(f"active-filters-per-digit-{layer}" for layer in ("conv1", "conv2", "pool")),
    "active-filters-rules-conv1",
    *(f"norms-{layer}" for layer in ("conv1", "conv2", "pool")),
    *(f"deconv-{kind}-digit-{digit}" for digit in (3, 7, 9) for kind in ("conv1", "deep")),
    *(f"top9-{layer}" for layer in ("conv1", "conv2", "pool")),
    "feature-evolution",
    "conv1-weights",
    "autoencoder",
    "autoencoder-layers",
    *(f"invariance-{transform}" for transform in ("shift-x", "shift-y", "rotate", "scale")),
    *(f"optimized-{layer}" for layer in ("conv1", "conv2", "pool", "classes")),
    "digit-judge-letters",
]


@pytest.fixture(scope="module")
def report(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    (out / "stale.png").write_bytes(b"left over from an older report")
    models = link_shipped_models(tmp_path_factory.mktemp("shipped") / "models")
    status = main(
        [
            "report",
            "--data-dir",
            str(mnist_dir),
            "--model-dir",
            str(models),
            "--out-dir",
            str(out),
            "--top-filters",
            "2",
        ]
    )
    assert status == 0
    return out, (out / "README.md").read_text()


def test_every_listed_figure_exists_and_is_a_readable_png(report):
    out, text = report
    listed = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert [Path(name).stem for name in listed] == FIGURES
    for name in listed:
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            assert image.width >= 400 and image.height >= 200, (name, image.size)
            assert (out / name).stat().st_size < 200_000, name


def test_only_the_listed_figures_are_left_in_the_folder(report):
    out, text = report
    assert sorted(p.name for p in out.glob("*.png")) == sorted(re.findall(r"\]\(([^)]+\.png)\)", text))


def test_every_figure_has_a_title_and_a_caption(report):
    _, text = report
    for section in text.split("\n## ")[1:]:
        lines = [line for line in section.splitlines() if line.strip()]
        if any(line.startswith("![") for line in lines):
            image = next(i for i, line in enumerate(lines) if line.startswith("!["))
            assert image + 1 < len(lines) and len(lines[image + 1]) > 80, lines[0]


def test_the_report_states_the_models_numbers(report):
    _, text = report
    assert "| **total** | | | **1,199,882** |" in text
    assert re.search(r"Test accuracy \*\*\d\d\.\d\d %\*\*", text)
    assert re.search(r"\| conv2 \| 64 \| \d+\.\d+ \|", text)


def test_without_statistics_the_report_says_to_run_analyze(mnist_dir, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        (models / name).symlink_to(MODELS / name)
    status = main(
        ["report", "--data-dir", str(mnist_dir), "--model-dir", str(models), "--out-dir", str(tmp_path / "paper")]
    )
    assert status == 2
    assert "python -m training analyze" in capsys.readouterr().err


def variants_section(mnist_dir, tmp_path: Path, variants: Path) -> tuple[Path, str]:
    """The report's variants section alone, on the shipped models with ``variants`` beside them."""
    models = link_shipped_models(tmp_path / "models")
    (models / "variants").symlink_to(variants, target_is_directory=True)
    report = Report(models, mnist_dir, tmp_path / "paper")
    report.variants()
    return report.out_dir, report.markdown().split("\n## Activation and optimizer variants\n")[1]


def test_the_variants_get_their_table_curves_and_deconvolutions(mnist_dir, tmp_path, tiny_sweep):
    out, section = variants_section(mnist_dir, tmp_path, tiny_sweep)
    assert "| variant | test accuracy |" in section and section.count("\n| relu-") == 2
    figures = re.findall(r"\]\(([^)]+\.png)\)", section)
    assert figures == ["variants-curves.png", "variants-deconv-conv1.png"]
    for name in figures:
        with Image.open(out / name) as image:
            assert image.width >= 400 and (out / name).stat().st_size < 200_000


def test_without_the_variants_onnx_files_the_deconvolutions_are_left_out(mnist_dir, tmp_path, tiny_sweep):
    variants = tmp_path / "variants"
    variants.mkdir()
    for path in tiny_sweep.glob("*.*"):
        (variants / path.name).symlink_to(path)
    out, section = variants_section(mnist_dir, tmp_path, variants)
    assert re.findall(r"\]\(([^)]+\.png)\)", section) == ["variants-curves.png"]
    assert "ONNX files are not here" in section
