"""How the backward graph is run: the predicted class chosen inside it, and large runs cut into parts."""

from __future__ import annotations

import numpy as np
import pytest

from service.attribution import METHODS
from service.attribution.inputs import PREDICTED
from service.graphs.backward_graph import Decisions, RunPolicy, run_policy
from service.runtime import split_runs

IMAGES = 300  # real test digits: enough for close calls between two classes, and more than one run of 64


@pytest.fixture(scope="module")
def test_images(mnist_test) -> np.ndarray:
    return mnist_test[0][:IMAGES].astype(np.float32) / 255


def _maps(name: str, result) -> np.ndarray:
    return result.grid if name == "occlusion" else result


@pytest.mark.parametrize("name", ["saliency", "gradient-x-input", "grad-cam", "occlusion"])
def test_a_predicted_target_is_the_class_the_served_model_predicts(classifier, test_images, name):
    images = test_images if name != "occlusion" else test_images[:40]
    served = classifier.run(images, ["output"])["output"]
    decisions = Decisions()
    with run_policy(RunPolicy(decisions=decisions)):
        maps = METHODS[name].compute(
            classifier.run, classifier.weights, images, np.full(len(images), PREDICTED, dtype=np.intp)
        )
    chosen = np.concatenate(decisions.targets)
    np.testing.assert_array_equal(chosen, served.argmax(axis=1))
    np.testing.assert_allclose(np.concatenate(decisions.probabilities), served, atol=1e-6)
    explicit = METHODS[name].compute(classifier.run, classifier.weights, images, chosen)
    np.testing.assert_array_equal(_maps(name, maps), _maps(name, explicit))


def test_an_explicit_target_is_differentiated_whatever_the_prediction(shipped, test_images):
    decisions = Decisions()
    with run_policy(RunPolicy(decisions=decisions)):
        METHODS["saliency"].compute(shipped.run, shipped.weights, test_images[:5], np.full(5, 3, dtype=np.intp))
    np.testing.assert_array_equal(np.concatenate(decisions.targets), [3] * 5)


@pytest.mark.parametrize("name", ["integrated-gradients", "smoothgrad"])
def test_a_method_that_needs_the_target_before_its_runs_refuses_a_predicted_target(shipped, test_images, name):
    with pytest.raises(ValueError, match=r"classes in \[0, 9\]"):
        METHODS[name].compute(shipped.run, shipped.weights, test_images[:1], np.array([PREDICTED]))


@pytest.mark.parametrize("name", ["integrated-gradients", "occlusion", "saliency"])
def test_large_runs_cut_into_two_parts_give_the_maps_of_one_run(shipped, test_images, name, monkeypatch):
    images, targets = test_images[:70], np.arange(70) % 10
    if name != "saliency":
        images, targets = images[:2], targets[:2]
    cuts = []
    split = split_runs.split_feeds
    monkeypatch.setattr(split_runs, "split_feeds", lambda feeds, parts: cuts.append(parts) or split(feeds, parts))
    answers = []
    for threads in (1, 2):
        with run_policy(RunPolicy(batch_threads=threads)):
            result = METHODS[name].compute(shipped.run, shipped.weights, images, targets)
        answers.append(result.pixels if name == "occlusion" else result)
    np.testing.assert_allclose(answers[1], answers[0], atol=1e-5 * float(np.abs(answers[0]).max()))
    assert cuts and set(cuts) == {2}
