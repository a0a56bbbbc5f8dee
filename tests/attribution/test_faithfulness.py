"""Deletion and insertion curves: their shape, and that a saliency map beats a random pixel order on real digits."""

from __future__ import annotations

import numpy as np
import pytest

from service.attribution.faithfulness import STEPS, faithfulness
from service.attribution.saliency import saliency


@pytest.fixture(scope="module")
def fifty(shipped, mnist_test):
    """Faithfulness of the shipped classifier's saliency maps on 50 real test digits."""
    images = mnist_test[0][:50].astype(np.float32) / 255
    targets = mnist_test[1][:50].astype(np.intp)
    return faithfulness(shipped.run, images, targets, saliency(shipped.run, shipped.weights, images, targets))


def test_the_curves_go_from_the_image_to_black_in_32_steps(shipped, digits):
    images, targets = digits[0][:3], digits[1][:3]
    result = faithfulness(shipped.run, images, targets, saliency(shipped.run, shipped.weights, images, targets))
    p = shipped.run(np.concatenate([images, np.zeros_like(images)]), ["output"])["output"][:, targets]
    p_image, p_black = np.diag(p[:3]), np.diag(p[3:])
    np.testing.assert_allclose(result.fractions, np.linspace(0, 1, STEPS + 1))
    for curve in (result.deletion, result.insertion, result.random_deletion, result.random_insertion):
        assert curve.shape == (3, STEPS + 1)
    np.testing.assert_allclose(result.deletion[:, [0, -1]], np.stack([p_image, p_black], axis=1), atol=1e-6)
    np.testing.assert_allclose(result.insertion[:, [0, -1]], np.stack([p_black, p_image], axis=1), atol=1e-6)
    np.testing.assert_allclose(result.deletion_auc, np.trapezoid(result.deletion, result.fractions, axis=1))


def test_on_50_digits_saliency_ordered_deletion_has_a_lower_auc_than_random_order(fifty):
    assert fifty.deletion_auc.mean() < fifty.random_deletion_auc.mean()


def test_on_50_digits_saliency_ordered_insertion_has_a_higher_auc_than_random_order(fifty):
    assert fifty.insertion_auc.mean() > fifty.random_insertion_auc.mean()


def test_maps_of_another_shape_than_the_images_are_refused(shipped, digits):
    with pytest.raises(ValueError, match="maps must be"):
        faithfulness(shipped.run, digits[0][:2], digits[1][:2], np.zeros((2, 24, 24)))
