"""`python -m training report` on the shipped models and statistics writes the report and every figure it lists;
it ranks the attribution methods from the statistics (or names the command that adds them); with a sweep's variants
beside them it adds their comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.attribution import METHODS
from tests.helpers import MODELS, link_shipped_models
from training import plots
from training.__main__ import main
from training.report.attribution import attribution_faithfulness, attribution_tiles
from training.report.folder import FigureFolder
from training.report.sources import Sources
from training.report.variants import variants

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
    "attribution-methods",
    "attribution-faithfulness",
    "explanation-quality",
]
ATTRIBUTION_SECTION = "\n## Why the network decides: the attribution methods\n"


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


def ranking_rows(section: str) -> list[list[str]]:
    """The cells of the ranking table's rows (its header and the random-order row left out)."""
    table = section.split("| rank | method |")[1].split("\n\n")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return [row for row in rows if row[0]]


def test_the_report_ranks_the_attribution_methods_as_the_statistics_file_records_them(report):
    out, text = report
    section = text.split(ATTRIBUTION_SECTION)[1].split("\n## ")[0]
    stored = json.loads((MODELS / "statistics.json").read_text())["attribution"]
    by_deletion = sorted(stored["methods"], key=lambda name: stored["methods"][name]["deletion_auc"])
    by_insertion = sorted(stored["methods"], key=lambda name: -stored["methods"][name]["insertion_auc"])
    rows = ranking_rows(section)
    assert [row[1] for row in rows] == [f"`{name}`" for name in by_deletion]
    for rank, row in enumerate(rows, start=1):
        entry = stored["methods"][row[1].strip("`")]
        assert row[0] == str(rank)
        assert row[3:] == [
            f"{entry['deletion_auc']:.3f}",
            f"{entry['insertion_auc']:.3f}",
            str(by_insertion.index(row[1].strip("`")) + 1),
        ]
    reference = f"| | random order (reference) | | {stored['random_deletion_auc']:.3f} | "
    assert reference + f"{stored['random_insertion_auc']:.3f} | |" in section
    for name in METHODS:
        assert re.search(rf"^\| `{name}` \| .{{20,}} \| .+ \d{{4}}", section, re.MULTILINE), name
    assert (out / "attribution-faithfulness.png").read_bytes() == (MODELS / "plots" / "attribution.png").read_bytes()


def statistics_folder(tmp_path: Path, change) -> Path:
    """The shipped models with a copy of their statistics.json changed by ``change`` (a function of the document)."""
    models = link_shipped_models(tmp_path / "models")
    (models / "statistics.json").unlink()
    document = json.loads((MODELS / "statistics.json").read_text())
    change(document)
    (models / "statistics.json").write_text(json.dumps(document))
    return models


def test_without_the_attribution_statistics_the_report_names_the_command_that_adds_them(mnist_dir, tmp_path):
    models = statistics_folder(tmp_path, lambda document: document.pop("attribution"))
    folder = FigureFolder(tmp_path / "paper")
    section = attribution_faithfulness(Sources(models, mnist_dir), folder)
    assert f"python -m training analyze --data-dir MNIST_DIR --model-dir {models} --only attribution" in section
    assert "| rank |" not in section and "| `integrated-gradients` |" in section
    assert folder.figures == [] and not (tmp_path / "paper" / "attribution-faithfulness.png").exists()


def test_without_the_stored_curves_plot_the_report_draws_them_from_the_statistics(mnist_dir, tmp_path):
    models = statistics_folder(tmp_path, lambda document: document["plots"].pop("attribution"))
    folder = FigureFolder(tmp_path / "paper")
    attribution_faithfulness(Sources(models, mnist_dir), folder)
    assert [figure.file for figure in folder.figures] == ["attribution-faithfulness.png", "explanation-quality.png"]
    with Image.open(tmp_path / "paper" / "attribution-faithfulness.png") as image:
        assert image.format == "PNG" and image.width >= 800


def test_the_methods_figure_shows_every_method_on_real_digits_in_a_row_each(mnist_dir, mnist_test, tmp_path):
    images, labels = mnist_test
    sources = Sources(link_shipped_models(tmp_path / "models"), mnist_dir)
    digits = (1, 8)
    drawn = attribution_tiles(sources, digits)
    first = [int(np.flatnonzero(labels == d)[0]) for d in digits]
    assert drawn.tiles.shape == (len(digits), 1 + len(METHODS), 28, 28, 3)
    assert np.array_equal(drawn.tiles[:, 0], np.repeat(images[first][..., None], 3, axis=-1))
    coloured = drawn.tiles[:, 1:].max(axis=-1) != drawn.tiles[:, 1:].min(axis=-1)  # gray is R = G = B
    drawn_maps = {
        (index, name) for r, index in enumerate(first) for c, name in enumerate(METHODS) if coloured[r, c].any()
    }
    assert drawn_maps | set(drawn.empty) == {(index, name) for index in first for name in METHODS}
    probabilities = sources.classifier.run(images[first].astype(np.float32) / 255, ["output"])["output"]
    for label, index, p in zip(drawn.labels, first, probabilities):
        assert label == f"#{index}: a {labels[index]}\npredicted {p.argmax()}\np = {p.max():.3f}"
    fig = plots.attribution_methods_figure(drawn.tiles, list(METHODS), drawn.labels, drawn.signed, "title")
    grid = [ax for ax in fig.axes if ax.images and ax.images[0].get_array().shape == (28, 28, 3)]
    assert len(grid) == len(digits) * (1 + len(METHODS))
    assert [ax.get_title() for ax in grid[: 1 + len(METHODS)]] == ["input", *METHODS]
    assert [grid[r * (1 + len(METHODS))].get_ylabel() for r in range(len(digits))] == drawn.labels


def variants_section(mnist_dir, tmp_path: Path, variants_dir: Path) -> tuple[FigureFolder, str]:
    """The report's variants section alone, on the shipped models with ``variants_dir`` beside them: the folder
    holding its figures, and its text."""
    models = link_shipped_models(tmp_path / "models")
    (models / "variants").symlink_to(variants_dir, target_is_directory=True)
    folder = FigureFolder(tmp_path / "paper")
    return folder, variants(Sources(models, mnist_dir), folder)


def test_the_variants_get_their_table_curves_and_deconvolutions(mnist_dir, tmp_path, tiny_sweep):
    folder, section = variants_section(mnist_dir, tmp_path, tiny_sweep)
    assert "| variant | test accuracy |" in section and section.count("\n| relu-") == 2
    assert [(figure.file, figure.section) for figure in folder.figures] == [
        ("variants-curves.png", "variants"),
        ("variants-deconv-conv1.png", "variants"),
    ]
    for figure in folder.figures:
        with Image.open(folder.out_dir / figure.file) as image:
            assert image.width >= 400 and (folder.out_dir / figure.file).stat().st_size < 200_000


def test_without_the_variants_onnx_files_the_deconvolutions_are_left_out(mnist_dir, tmp_path, tiny_sweep):
    without_onnx = tmp_path / "variants"
    without_onnx.mkdir()
    for path in tiny_sweep.glob("*.*"):
        (without_onnx / path.name).symlink_to(path)
    folder, section = variants_section(mnist_dir, tmp_path, without_onnx)
    assert [figure.file for figure in folder.figures] == ["variants-curves.png"]
    assert "ONNX files are not here" in section
