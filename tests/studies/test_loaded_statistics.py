"""``LoadedStatistics``: the statistics start-up loaded for each served classifier, looked up by model."""

from __future__ import annotations

import pytest

from service.runtime.registry import load_registry
from service.studies.layers import NotApplicable, UnknownLayer
from service.studies.statistics import (
    DatasetStatistics,
    LoadedStatistics,
    NoStatistics,
    StatisticsUnavailable,
    load_all_statistics,
)
from tests.helpers import MODELS


@pytest.fixture(scope="module")
def shipped() -> DatasetStatistics:
    loaded = load_all_statistics(MODELS, load_registry(MODELS, variants=False))
    assert isinstance(loaded, LoadedStatistics)
    return loaded.of("classifier")


@pytest.fixture
def loaded(shipped) -> LoadedStatistics:
    """The shipped classifier's statistics, and a variant whose statistics could not be loaded."""
    return LoadedStatistics({"classifier": shipped, "tanh-sgd": StatisticsUnavailable("stale; run analyze")})


def test_a_model_without_statistics_is_no_statistics_naming_those_that_have(loaded):
    with pytest.raises(NoStatistics, match="no dataset statistics for model 'autoencoder'; .*: classifier, tanh-sgd"):
        loaded.of("autoencoder")


def test_statistics_that_could_not_be_loaded_say_why(loaded):
    with pytest.raises(StatisticsUnavailable, match="stale; run analyze"):
        loaded.of("tanh-sgd")


def test_the_judge_is_the_loaded_statistics_own_and_none_without_them(loaded, shipped):
    assert loaded.judge("classifier") is shipped.judge is not None
    assert loaded.judge("tanh-sgd") is None and loaded.judge("autoencoder") is None


def test_a_rule_other_than_dataset_is_applied_as_it_is(loaded):
    assert loaded.layer_rule("autoencoder", "conv2", "l1", "median") == "median"
    assert loaded.layer_rule("autoencoder", "conv2", "l1", 0.5) == 0.5


def test_the_dataset_rule_is_the_layers_dataset_threshold(loaded, shipped):
    assert loaded.layer_rule("classifier", "conv2", "l2", "dataset") == shipped.dataset_threshold("conv2")


def test_the_dataset_rule_is_for_the_l2_norm_only(loaded):
    with pytest.raises(NotApplicable, match="use it with norm=l2"):
        loaded.layer_rule("classifier", "conv2", "max", "dataset")


def test_the_dataset_rule_for_a_layer_the_statistics_do_not_cover_lists_those_they_do(loaded):
    with pytest.raises(UnknownLayer, match="no statistics for layer 'dense1'; layers: conv1, conv2, pool"):
        loaded.layer_rule("classifier", "dense1", "l2", "dataset")
