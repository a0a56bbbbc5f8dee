"""ClassifierWeights read from the ONNX graph: Keras layouts that reproduce the graph's own outputs, and refusals."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from service.attribution import classifier_weights
from service.runtime.registry import conv_kernels
from tests.attribution.conftest import ROOT


def _activate(values: np.ndarray, activation: str) -> np.ndarray:
    return {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh}[activation](values)


def test_the_kernels_are_the_registry_s_hwio_kernels(shipped):
    kernels = conv_kernels(onnx.load(str(shipped.path)))
    np.testing.assert_array_equal(shipped.weights.conv1_kernel, kernels["conv1"])
    np.testing.assert_array_equal(shipped.weights.conv2_kernel, kernels["conv2"])
    assert shipped.weights.conv1_kernel.shape == (3, 3, 1, 32) and shipped.weights.conv2_kernel.shape == (3, 3, 32, 64)


def test_the_dense_weights_reproduce_the_graph_s_dense1_and_output_from_pool(classifier, digits):
    """dense1 = act(flatten_NHWC(pool) @ W1 + b1) and output = softmax(dense1 @ W2 + b2), as onnxruntime computes."""
    weights = classifier.weights
    out = classifier.run(digits[0], ["pool", "dense1", "output"])
    dense1 = _activate(
        out["pool"].reshape(len(out["pool"]), -1) @ weights.dense1_kernel + weights.dense1_bias, weights.activation
    )
    np.testing.assert_allclose(dense1, out["dense1"], atol=1e-4)
    logits = out["dense1"] @ weights.output_kernel + weights.output_bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities / probabilities.sum(axis=1, keepdims=True), out["output"], atol=1e-5)


def test_the_activation_is_read_from_the_graph(shipped, tanh):
    assert (shipped.weights.activation, tanh.weights.activation) == ("relu", "tanh")


def test_the_weights_are_read_only(shipped):
    with pytest.raises(ValueError):
        shipped.weights.dense1_kernel[0, 0] = 1.0


def test_the_autoencoder_is_refused_with_a_value_error():
    with pytest.raises(ValueError, match="not the convlens classifier"):
        classifier_weights(onnx.load(str(ROOT / "models" / "autoencoder.onnx")))


def test_a_padded_convolution_is_refused_with_a_value_error(shipped):
    proto = onnx.load(str(shipped.path))
    conv = next(node for node in proto.graph.node if node.op_type == "Conv")
    conv.attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))
    with pytest.raises(ValueError, match="stride-1 valid convolution"):
        classifier_weights(proto)
