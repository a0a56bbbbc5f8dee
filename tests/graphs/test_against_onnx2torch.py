"""A second route to the gradients of a model no framework source exists for: the shipped classifier's ONNX file
(models/classifier.onnx, tf2onnx's NHWC graph with its Transposes, Slices and Softmax) converted to PyTorch by
onnx2torch, then torch autograd; the builder's saliency of the same file equals it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx2torch import convert

from service.attribution.any_model import GradientRunner, one_hot, saliency
from service.graphs.gradient_builder import gradient_graph

ROOT = Path(__file__).resolve().parents[2]
RELATIVE = 1e-4
DIGITS = 8


@pytest.fixture(scope="module")
def classifier() -> onnx.ModelProto:
    return onnx.load(str(ROOT / "models" / "classifier.onnx"))


@pytest.fixture(scope="module")
def digits(mnist_test: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = mnist_test
    return images[:DIGITS, :, :, None].astype(np.float32) / 255, labels[:DIGITS].astype(np.int64)


def test_builder_saliency_of_the_probabilities_equals_autograd_on_the_onnx2torch_conversion(
    classifier: onnx.ModelProto, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = digits
    converted = convert(classifier).eval()
    x = torch.from_numpy(images).requires_grad_(True)
    outputs = converted(x)  # every graph output, in the file's order
    probabilities = outputs[[output.name for output in classifier.graph.output].index("output")]
    probabilities[torch.arange(DIGITS), torch.from_numpy(labels)].sum().backward()
    expected = x.grad.numpy()

    runner = GradientRunner(gradient_graph(classifier, "output", ["input"]), "input")
    actual = saliency(runner, images, one_hot(labels, 10))
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RELATIVE * np.abs(expected).max())
