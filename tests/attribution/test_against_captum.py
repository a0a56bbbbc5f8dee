"""Every method against Captum on a PyTorch copy of the network with the ONNX file's weights: real test digits (24,
8 for integrated gradients and occlusion, Captum's slow ones), the shipped ReLU model and the tanh
variant, Pearson correlation of all maps at least 0.999."""

from __future__ import annotations

import numpy as np
import pytest

from references.captum_maps import captum_maps
from service.attribution import METHODS
from tests.attribution.maps import pearson, relative_max_diff

MIN_CORRELATION = 0.999


def ours_and_captum(
    classifier, digits, method: str, count: int | None = None, **parameters
) -> tuple[np.ndarray, np.ndarray]:
    """Our maps and Captum's of the first ``count`` digits (all by default)."""
    images, targets = digits[0][:count], digits[1][:count]
    ours = METHODS[method].compute(classifier.run, classifier.weights, images, targets, **parameters)
    return ours, captum_maps(method, classifier.weights, images, targets, **parameters)


@pytest.mark.parametrize("method", ["saliency", "gradient-x-input"])
def test_gradient_maps_correlate_with_captum(classifier, digits, method):
    ours, captum = ours_and_captum(classifier, digits, method)
    assert pearson(ours, captum) >= MIN_CORRELATION


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU activations")
def test_guided_backprop_correlates_with_captum(shipped, digits):
    ours, captum = ours_and_captum(shipped, digits, "guided-backprop")
    assert pearson(ours, captum) >= MIN_CORRELATION


def test_integrated_gradients_is_captum_s_riemann_trapezoid_rescaled_by_its_weight_sum(classifier, digits):
    """Captum 0.9 weights its trapezoid points 1/steps (sum (steps-1)/steps); the trapezoid rule's 1/(steps-1)."""
    ours, captum = ours_and_captum(classifier, digits, "integrated-gradients", count=8, steps=50)
    assert pearson(ours, captum) >= MIN_CORRELATION
    assert relative_max_diff(ours * 49 / 50, captum).max() < 1e-3 < relative_max_diff(ours, captum).max()


@pytest.mark.parametrize("layer", ["conv1", "conv2", "pool"])
def test_grad_cam_correlates_with_captum_s_layer_grad_cam(classifier, digits, layer):
    ours, captum = ours_and_captum(classifier, digits, "grad-cam", layer=layer)
    assert pearson(ours, captum) >= MIN_CORRELATION


def test_occlusion_pixels_correlate_with_captum_s_occlusion(classifier, digits):
    ours, captum = ours_and_captum(classifier, digits, "occlusion", count=8, patch=4, stride=2, fill=0.0)
    assert pearson(ours.pixels, captum) >= MIN_CORRELATION
