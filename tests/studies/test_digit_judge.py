"""The shipped "is this a digit?" judge on real test digits, font-rendered letters and uniform noise, through the
service's own judge (``service.studies.digit_judge``, the calibration in the shipped statistics) and classifier."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from service.runtime.registry import load_registry
from service.studies.digit_judge import OUTPUTS, part_scores
from service.studies.digit_judge_graph import SCORE, attach_judges, judged_classifier
from service.studies.statistics import load_statistics
from tests.helpers import MODELS
from training import nondigits


@pytest.fixture(scope="module")
def judged():
    """A function from float inputs (N, 28, 28) to whether the judge flags each (not digit-like)."""
    registry = load_registry(MODELS, variants=False)
    judge = load_statistics(MODELS, registry).judge
    assert judge is not None, "the shipped statistics have no digit judge"
    classifier = registry.models["classifier"]

    def flags(images: np.ndarray) -> np.ndarray:
        return judge.scores(images, classifier.run(images, list(OUTPUTS))) > judge.threshold

    return flags


def test_at_most_3_percent_of_the_real_test_digits_are_flagged(judged, mnist_test):
    assert judged(mnist_test[0].astype(np.float32) / 255.0).mean() <= 0.03


def test_at_least_75_percent_of_letters_that_resemble_no_digit_are_flagged(judged):
    letters, names = nondigits.letters()
    assert len(letters) >= 17 * 2 * 3  # every letter in the bundled font alone at two sizes and three angles
    assert set(names) == set(nondigits.LETTERS)
    assert judged(letters).mean() >= 0.75


def test_at_least_99_percent_of_uniform_noise_is_flagged(judged):
    assert judged(nondigits.uniform_noise(1000, seed=7)).mean() >= 0.99


def test_the_letters_come_through_the_mnist_preprocessing():
    letters, _ = nondigits.letters()
    assert letters.dtype == np.float32 and letters.shape[1:] == (28, 28)
    assert letters.max() == pytest.approx(1.0)  # contrast stretched
    assert (letters[:, :, 0] == 0).all() and (letters[:, 0, :] == 0).mean() > 0.9  # light ink on black, in the middle


def test_the_served_score_is_the_larger_part_as_the_parts_define_it(mnist_test):
    """``scores`` (the folded, float32 arithmetic the service runs) equals the plain definition of the parts."""
    registry = load_registry(MODELS, variants=False)
    judge = load_statistics(MODELS, registry).judge
    images = np.concatenate([mnist_test[0][:50].astype(np.float32) / 255.0, nondigits.uniform_noise(20)])
    outputs = registry.models["classifier"].run(images, list(OUTPUTS))
    parts = part_scores(judge.arrays, images, outputs["dense1"], outputs["output"])
    expected = ((parts - judge.arrays["centre"]) / judge.arrays["spread"]).max(axis=1)
    np.testing.assert_allclose(judge.scores(images, outputs), expected, rtol=1e-4, atol=1e-4)


def test_the_score_computed_in_the_classifier_s_run_is_the_parts_definition(mnist_test):
    """The judged graph (``service.studies.digit_judge_graph``, what /v1/classify runs) against the plain numpy
    definition
    of the parts, on digits, letters and noise; the classifier's own outputs stay bit for bit the file's."""
    registry = load_registry(MODELS, variants=False)
    judge = load_statistics(MODELS, registry).judge
    classifier = registry.models["classifier"]
    images = np.concatenate(
        [mnist_test[0][:200].astype(np.float32) / 255.0, nondigits.letters()[0][:50], nondigits.uniform_noise(50)]
    )
    before = classifier.run(images, list(OUTPUTS))
    attach_judges(registry, {"classifier": load_statistics(MODELS, registry)})
    after = classifier.run(images, [*OUTPUTS, SCORE])
    for name in OUTPUTS:
        np.testing.assert_array_equal(after[name], before[name])
    parts = part_scores(judge.arrays, images, before["dense1"], before["output"])
    expected = ((parts - judge.arrays["centre"]) / judge.arrays["spread"]).max(axis=1)
    np.testing.assert_allclose(after[SCORE], expected, rtol=1e-4, atol=1e-4)
    assert ((after[SCORE] > judge.threshold) == (expected > judge.threshold)).mean() >= 0.99


def test_a_graph_without_the_classifier_s_outputs_cannot_take_the_judge():
    registry = load_registry(MODELS, variants=False)
    judge = load_statistics(MODELS, registry).judge
    with pytest.raises(ValueError, match="dense1 and output"):
        judged_classifier(onnx.load(str(MODELS / "autoencoder.onnx")), judge)
