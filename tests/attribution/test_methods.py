"""The registry of methods, their parameter validation and the errors the API turns into 422."""

from __future__ import annotations

import numpy as np
import pytest

from service.attribution import METHODS, GuidedBackpropNeedsRelu
from service.attribution.guided_backprop import guided_backprop
from service.attribution.occlusion import OcclusionMaps
from service.graphs.backward_graph import ClassifierGraphs

NAMES = (
    "saliency",
    "gradient-x-input",
    "guided-backprop",
    "integrated-gradients",
    "smoothgrad",
    "grad-cam",
    "grad-cam-plus-plus",
    "hires-cam",
    "xgrad-cam",
    "layer-cam",
    "score-cam",
    "eigen-cam",
    "ablation-cam",
    "occlusion",
    "rise",
    "kernel-shap",
    "feature-ablation",
)
CAMS = {name for name in NAMES if "cam" in name}


def test_the_registry_lists_the_methods_in_order():
    assert tuple(METHODS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_method_runs_through_the_registry_with_its_defaults(shipped, digits, name):
    images, targets = digits[0][:2], digits[1][:2]
    result = METHODS[name].compute(shipped.run, shipped.weights, images, targets)
    if name == "occlusion":
        assert isinstance(result, OcclusionMaps) and result.pixels.shape == (2, 28, 28)
    elif name in CAMS:
        assert result.shape == (2, 24, 24)
    else:
        assert result.shape == (2, 28, 28) and result.dtype == np.float32 and np.abs(result).max() > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_method_s_maps_hold_negative_values_exactly_when_it_is_signed(shipped, digits, name):
    method = METHODS[name]
    values, pixels = method.maps(method.compute(shipped.run, shipped.weights, digits[0][:4], digits[1][:4]))
    assert pixels.shape == (4, 28, 28)
    assert bool(values.min() < 0) == method.signed


@pytest.mark.parametrize("name", NAMES)
def test_a_method_runs_the_backward_graph_exactly_when_it_needs_gradients(shipped, digits, name, monkeypatch):
    backward_runs = []
    original = ClassifierGraphs.backward

    def counted(self, *args, **kwargs):
        backward_runs.append(args[0].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ClassifierGraphs, "backward", counted)
    METHODS[name].compute(shipped.run, shipped.weights, digits[0][:1], digits[1][:1])
    assert bool(backward_runs) == METHODS[name].needs_gradients


@pytest.mark.parametrize(
    ("name", "parameter", "value", "message"),
    [
        ("integrated-gradients", "steps", 1, r"steps must be an integer in \[2, 512\]"),
        ("integrated-gradients", "steps", 513, r"\[2, 512\]"),
        ("integrated-gradients", "steps", 2.5, "an integer"),
        ("smoothgrad", "samples", 0, r"samples must be an integer in \[1, 200\]"),
        ("smoothgrad", "noise", -0.1, r"noise must be a number in \[0, 1\]"),
        ("smoothgrad", "noise", float("nan"), r"\[0, 1\]"),
        ("smoothgrad", "seed", -1, r"\[0, 4294967295\]"),
        ("grad-cam", "layer", "dense1", "layer must be one of conv1, conv2, pool"),
        ("occlusion", "patch", 0, r"patch must be an integer in \[1, 28\]"),
        ("occlusion", "stride", 29, r"stride must be an integer in \[1, 28\]"),
        ("occlusion", "fill", 2.0, r"fill must be a number in \[0, 1\]"),
    ],
)
def test_a_parameter_out_of_range_raises_a_value_error_naming_the_range(
    shipped, digits, name, parameter, value, message
):
    assert parameter in METHODS[name].parameters
    with pytest.raises(ValueError, match=message):
        METHODS[name].compute(shipped.run, shipped.weights, digits[0][:1], digits[1][:1], **{parameter: value})


@pytest.mark.parametrize(
    ("images", "targets", "message"),
    [
        (np.zeros((2, 28, 27)), [1, 2], "images must be"),
        (np.zeros((2, 28, 28)), [1], "targets must be 2"),
        (np.zeros((2, 28, 28)), [1, 10], r"classes in \[0, 9\]"),
        (np.zeros((2, 28, 28)), [1.0, 2.0], "integer"),
    ],
)
def test_a_batch_that_does_not_fit_raises_a_value_error(shipped, images, targets, message):
    with pytest.raises(ValueError, match=message):
        METHODS["saliency"].compute(shipped.run, shipped.weights, images, np.asarray(targets))


def test_guided_backprop_on_the_tanh_variant_raises_guided_backprop_needs_relu(tanh, digits):
    with pytest.raises(GuidedBackpropNeedsRelu, match="tanh"):
        guided_backprop(tanh.run, tanh.weights, digits[0][:1], digits[1][:1])


@pytest.mark.parametrize("name", ["saliency", "smoothgrad", "grad-cam"])
def test_an_image_s_map_does_not_depend_on_the_rest_of_its_batch(shipped, digits, name):
    images, targets = digits[0][:4], digits[1][:4]
    together = METHODS[name].compute(shipped.run, shipped.weights, images, targets)
    alone = METHODS[name].compute(shipped.run, shipped.weights, images[2:3], targets[2:3])
    np.testing.assert_allclose(together[2], alone[0], atol=1e-6)
