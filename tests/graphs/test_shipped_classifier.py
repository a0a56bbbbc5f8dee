"""The builder's graph of the shipped classifier gives today's backward_graph.py gradients on real MNIST digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service.attribution import classifier_weights
from service.graphs.backward_graph import graphs_of
from service.graphs.gradient_builder import gradient_graph

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("conv1", "conv2", "pool")
DIGITS = 20


def logits_of(model: onnx.ModelProto) -> str:
    """The classifier's pre-softmax logits: the input of its Softmax."""
    return next(node.input[0] for node in model.graph.node if node.op_type == "Softmax")


@pytest.fixture(scope="module")
def classifier() -> onnx.ModelProto:
    return onnx.load(str(ROOT / "models" / "classifier.onnx"))


@pytest.mark.parametrize("rules", ["gradient", "guided"])
def test_builder_gradients_equal_the_hand_written_graph_for_every_target(
    classifier: onnx.ModelProto, mnist_test: tuple[np.ndarray, np.ndarray], rules: str
) -> None:
    images = mnist_test[0][:DIGITS].astype(np.float32) / 255
    built = gradient_graph(classifier, logits_of(classifier), ["input", *LAYERS], rules=rules)
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    weights = classifier_weights(classifier)  # held: the graphs keep only a weak reference
    graphs = graphs_of(weights)
    for target in range(10):
        targets = np.full(DIGITS, target)
        seeds = np.eye(10, dtype=np.float32)[targets]
        ours = dict(
            zip(
                built.gradients,
                session.run(list(built.gradients.values()), {"input": images[..., None], built.seed_input: seeds}),
                strict=True,
            )
        )
        today = graphs.backward(
            images, targets, ["input_grad", *(f"{layer}_grad" for layer in LAYERS)], rules == "guided"
        )
        pairs = {"input": (ours["input"][..., 0], today["input_grad"])}
        pairs.update({layer: (ours[layer], today[f"{layer}_grad"].transpose(0, 2, 3, 1)) for layer in LAYERS})
        for name, (actual, expected) in pairs.items():
            np.testing.assert_allclose(
                actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max(), err_msg=f"{name}, target {target}"
            )
