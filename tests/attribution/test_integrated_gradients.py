"""Integrated gradients: complete, the trapezoid rule, and batching that does not change an image's map."""

from __future__ import annotations

import numpy as np

from service.attribution import backward as backward_module
from service.attribution.backward import backward
from service.attribution.integrated_gradients import integrated_gradients


def test_integrated_gradients_is_complete_within_1_percent_at_64_steps(classifier, digits):
    images, targets = digits[0][:8], digits[1][:8]
    maps = integrated_gradients(classifier.run, classifier.weights, images, targets, steps=64)
    logit = backward(classifier.weights, images, targets).logits
    black = backward(classifier.weights, np.zeros_like(images), targets).logits
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), logit - black, rtol=0.01)


def test_two_steps_are_the_mean_of_the_gradients_at_black_and_at_the_image_times_the_image(shipped, digits):
    images, targets = digits[0][:4], digits[1][:4]
    at_image = backward(shipped.weights, images, targets).input
    at_black = backward(shipped.weights, np.zeros_like(images), targets).input
    np.testing.assert_allclose(
        integrated_gradients(shipped.run, shipped.weights, images, targets, steps=2),
        images * (at_black + at_image) / 2,
        atol=1e-6,
    )


def test_an_image_s_map_is_the_same_alone_and_in_a_batch_spread_over_several_chunks(shipped, digits, monkeypatch):
    images, targets = digits[0][:3], digits[1][:3]
    alone = [
        integrated_gradients(shipped.run, shipped.weights, images[i : i + 1], targets[i : i + 1], steps=10)[0]
        for i in range(3)
    ]
    monkeypatch.setattr(backward_module, "CHUNK", 7)  # chunks that split the steps of an image
    together = integrated_gradients(shipped.run, shipped.weights, images, targets, steps=10)
    np.testing.assert_allclose(together, np.stack(alone), atol=1e-6)
