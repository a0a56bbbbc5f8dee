"""The studies ``analyze`` adds: averaged invariance curves equal the service's one-image curves averaged, and the
ROC AUC helper agrees with its definition."""

from __future__ import annotations

import numpy as np
import pytest

from service.runtime.registry import load_registry
from service.studies.invariance import LAYERS, invariance
from tests.helpers import MODELS
from training.judge import roc_auc
from training.studies import invariance_statistics

COUNT = 30


@pytest.fixture(scope="module")
def classifier():
    return load_registry(MODELS, variants=False).models["classifier"]


def test_averaged_invariance_equals_the_one_image_curves_averaged(classifier, mnist_test):
    images, labels = mnist_test[0][:COUNT], mnist_test[1][:COUNT].astype(np.int64)
    averaged = invariance_statistics(classifier, images, labels, progress=False)["transforms"]["rotate"]
    curves = [
        invariance(classifier, image.astype(np.float32) / 255.0, "rotate", target=int(label))
        for image, label in zip(images, labels)
    ]
    np.testing.assert_allclose(
        averaged["all"]["probability"], np.mean([c.probability for c in curves], axis=0), rtol=1e-5, atol=1e-6
    )
    correct = np.mean([c.predicted == label for c, label in zip(curves, labels)], axis=0)
    np.testing.assert_allclose(averaged["all"]["accuracy"], correct)
    for layer in LAYERS:
        np.testing.assert_allclose(
            averaged["all"]["distance"][layer], np.mean([c.distance[layer] for c in curves], axis=0), rtol=1e-4
        )
    sevens = labels == 7
    np.testing.assert_allclose(
        averaged["digits"][7]["probability"],
        np.mean([c.probability for c in np.array(curves)[sevens]], axis=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_roc_auc_counts_pairs_and_ties_half():
    assert roc_auc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    negatives, positives = np.array([0.1, 0.4, 0.35]), np.array([0.8, 0.35, 0.2])
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    assert roc_auc(negatives, positives) == pytest.approx(np.mean(pairs))
