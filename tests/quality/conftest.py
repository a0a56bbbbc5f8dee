"""The shipped classifier in onnxruntime (the metrics' callables) and as its PyTorch copy (Quantus's model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from references.torch_classifier import TorchClassifier, as_input
from service.attribution.saliency import saliency
from service.graphs.backward_graph import graphs_of
from service.graphs.classifier_graph import forward_model
from service.graphs.classifier_weights import ClassifierWeights, classifier_weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def graph() -> onnx.ModelProto:
    return onnx.load(str(ROOT / "models" / "classifier.onnx"))


@pytest.fixture(scope="session")
def weights(graph) -> ClassifierWeights:
    return classifier_weights(graph)


def logits_of(weights: ClassifierWeights):
    """The classifier's logits (N, 10) in onnxruntime: the metrics' ScoresFn."""
    return lambda images: graphs_of(weights).run(
        "forward", forward_model, {"input": images.astype(np.float32)}, ["logits"]
    )[0]


def saliency_of(weights: ClassifierWeights):
    """Saliency in onnxruntime: the metrics' ExplainFn."""
    return lambda images, targets: saliency(None, weights, images, np.asarray(targets, np.intp))


def torch_saliency(model, inputs, targets, **kwargs) -> np.ndarray:
    """Quantus's explain_func: the target logit's gradient in PyTorch (as Captum's Saliency, abs=False)."""
    x = as_input(np.asarray(inputs).reshape(-1, 28, 28))
    model(x)[torch.arange(len(x)), torch.as_tensor(np.asarray(targets), dtype=torch.long)].sum().backward()
    return x.grad.detach().numpy()


@pytest.fixture(scope="session")
def torch_model(weights) -> TorchClassifier:
    return TorchClassifier(weights, softmax=False).eval()


@pytest.fixture(scope="session")
def sample(mnist_test, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eight real test digits, their labels and their saliency maps."""
    images = mnist_test[0][:8].astype(np.float32) / 255
    targets = mnist_test[1][:8].astype(np.intp)
    return images, targets, saliency_of(weights)(images, targets)
