"""The explanation-quality table (``training.quality_table``) through the real maps and metrics of the shipped
classifier: a cell is the mean of the metric called directly on the same maps, and the section fits the contract."""

from __future__ import annotations

import numpy as np
import pytest

from service.contract import QualityTable
from service.quality.effective_complexity import effective_complexity
from service.quality.sparseness import sparseness
from service.runtime.registry import load_registry
from service.studies.explain import explain
from tests.helpers import MODELS
from training.analyze import _rounded
from training.quality_table import quality_sample, quality_table

METHODS = ("saliency", "integrated-gradients")


@pytest.fixture(scope="module")
def classifier():
    return load_registry(MODELS, variants=False).models["classifier"]


@pytest.fixture(scope="module")
def sample(mnist_test) -> tuple[np.ndarray, np.ndarray]:
    indices = quality_sample(len(mnist_test[0]), 4, seed=3)
    return mnist_test[0][indices], indices


@pytest.fixture(scope="module")
def table(classifier, sample) -> dict:
    images, indices = sample
    return quality_table(classifier, images, indices, methods=METHODS, seed=3, progress=False)


def test_the_sample_is_seeded_distinct_and_sorted():
    drawn = quality_sample(10_000, 50, seed=3)
    assert np.array_equal(drawn, quality_sample(10_000, 50, seed=3))
    assert len(set(drawn.tolist())) == 50 and np.all(np.diff(drawn) > 0)
    assert not np.array_equal(drawn, quality_sample(10_000, 50, seed=4))


def test_a_table_cell_is_the_mean_of_the_metric_called_on_the_same_maps(classifier, sample, table):
    maps = explain(classifier, sample[0].astype(np.float32) / 255, "saliency").pixels
    cells = table["methods"]["saliency"]["metrics"]
    assert cells["sparseness"]["mean"] == pytest.approx(sparseness(maps).mean(), rel=1e-6)
    assert cells["sparseness"]["std"] == pytest.approx(sparseness(maps).std(), rel=1e-6)
    assert cells["effective_complexity"]["mean"] == pytest.approx(effective_complexity(maps).mean())
    assert cells["sparseness"]["images"] == 4


def test_only_integrated_gradients_has_a_completeness_gap_and_every_method_the_sanity_columns(table):
    assert "completeness_gap" in table["methods"]["integrated-gradients"]["metrics"]
    assert "completeness_gap" not in table["methods"]["saliency"]["metrics"]
    for row in table["methods"].values():
        assert 0 <= row["metrics"]["sanity_pass_rate"]["mean"] <= 1
        assert row["metrics"]["deletion"]["images"] == 4


def test_the_table_is_a_valid_statistics_section_naming_its_sample(table, sample):
    section = QualityTable.model_validate(_rounded(table))
    assert section.indices == sample[1].tolist() and section.seed == 3 and section.images == 4
    assert section.better["deletion"] == "lower" and section.better["insertion"] == "higher"
