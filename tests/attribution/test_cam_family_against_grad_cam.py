"""The CAM family against pytorch-grad-cam on the PyTorch copy of the shipped classifier (the ONNX file's
weights): real test digits, each image's label as the target, the same layer; each raw map (before
pytorch-grad-cam's min-max scaling and resizing) within float32 round-off of the reference's."""

from __future__ import annotations

import numpy as np
import pytest

from references.grad_cam_maps import grad_cam_maps
from service.attribution import METHODS
from tests.attribution.maps import pearson, relative_max_diff

MIN_CORRELATION = 0.999
COUNT = 8  # digits per comparison: Score-CAM and Ablation-CAM run one forward pass per channel in PyTorch

GRADIENT_CAMS = ["grad-cam-plus-plus", "hires-cam", "xgrad-cam", "layer-cam"]
FORWARD_CAMS = ["score-cam", "eigen-cam", "ablation-cam"]


def ours_and_reference(shipped, digits, method: str, layer: str) -> tuple[np.ndarray, np.ndarray]:
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    ours = METHODS[method].compute(shipped.run, shipped.weights, images, targets, layer=layer)
    return ours, grad_cam_maps(method, shipped.weights, images, targets, layer)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "pool"])
@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_gradient_cam_equals_pytorch_grad_cam_s_raw_map(shipped, digits, method, layer):
    ours, reference = ours_and_reference(shipped, digits, method, layer)
    assert ours.shape == reference.shape
    assert pearson(ours, reference) >= MIN_CORRELATION
    assert relative_max_diff(ours, reference).max() < 1e-3


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
@pytest.mark.parametrize("method", FORWARD_CAMS)
def test_forward_cam_equals_pytorch_grad_cam_s_raw_map(shipped, digits, method, layer):
    ours, reference = ours_and_reference(shipped, digits, method, layer)
    assert ours.shape == reference.shape
    assert pearson(ours, reference) >= MIN_CORRELATION
    assert relative_max_diff(ours, reference).max() < 1e-3


def test_cam_maps_are_not_all_zero(shipped, digits):
    """The comparison above means something: every method's maps of real digits hold positive values."""
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    for method in GRADIENT_CAMS + FORWARD_CAMS:
        maps = METHODS[method].compute(shipped.run, shipped.weights, images, targets, layer="conv2")
        assert (maps.reshape(COUNT, -1).max(axis=1) > 0).all(), method
