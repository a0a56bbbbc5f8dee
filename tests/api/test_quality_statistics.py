"""GET /v1/statistics/attribution serves the explanation-quality table that ``analyze`` writes: a section computed
by the real code on two test images, written into a copy of the shipped statistics, read back through the app."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from service.runtime.registry import load_registry
from tests.helpers import MODELS, served_models
from training.analyze import _rounded
from training.quality_table import quality_sample, quality_table


@pytest.fixture(scope="module")
def written(mnist_test, tmp_path_factory) -> tuple[dict, TestClient]:
    classifier = load_registry(MODELS, variants=False).models["classifier"]
    indices = quality_sample(len(mnist_test[0]), 2)
    section = _rounded(
        quality_table(classifier, mnist_test[0][indices], indices, ("saliency", "gradient-x-input"), progress=False)
    )
    folder = tmp_path_factory.mktemp("quality") / "models"
    folder.mkdir()
    for path in served_models().iterdir():
        if path.name != "statistics.json":
            (folder / path.name).symlink_to(path.resolve())
    statistics = json.loads((MODELS / "statistics.json").read_text())
    statistics["explanation_quality"] = section
    statistics["plots"].pop("explanation-quality", None)
    (folder / "statistics.json").write_text(json.dumps(statistics))
    with TestClient(create_app(Settings(model_dir=folder))) as client:
        yield section, client


def test_the_statistics_serve_each_cell_of_the_written_table(written):
    section, client = written
    quality = client.get("/v1/statistics/attribution").json()["quality"]
    assert quality["indices"] == section["indices"] and quality["images"] == 2
    for row in quality["methods"]:
        for cell in row["metrics"]:
            assert cell["mean"] == section["methods"][row["method"]]["metrics"][cell["metric"]]["mean"]


def test_each_cell_is_ranked_in_its_column_as_the_column_reads(written):
    section, client = written
    quality = client.get("/v1/statistics/attribution").json()["quality"]
    cells = {row["method"]: {c["metric"]: c for c in row["metrics"]} for row in quality["methods"]}
    for metric, better in section["better"].items():
        pair = [(cells[m][metric]["mean"], cells[m][metric]["rank"]) for m in cells if metric in cells[m]]
        if len(pair) == 2 and None not in (pair[0][0], pair[1][0]) and pair[0][0] != pair[1][0]:
            best = min(pair) if better == "lower" else max(pair)
            assert best[1] == 1


def test_the_quality_figure_missing_from_the_plots_is_a_404_saying_what_to_run(written):
    answer = written[1].get("/v1/statistics/attribution", params={"format": "png", "figure": "quality"})
    assert answer.status_code == 404 and "--only quality" in answer.json()["error"]
