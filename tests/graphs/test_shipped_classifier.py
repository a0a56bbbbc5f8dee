"""The shipped classifier's attribution graph (service/graphs/backward_graph.py: its forward graph rebuilt from the
weights, through the builder) gives the builder's gradients of the model file itself on real MNIST digits, and
picks each image's predicted class inside the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service.attribution import classifier_weights
from service.graphs.backward_graph import graphs_of
from service.graphs.classifier_weights import PREDICTED
from service.graphs.gradient_builder import GradientGraph, gradient_graph

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("conv1", "conv2", "pool")
DIGITS = 20


def logits_of(model: onnx.ModelProto) -> str:
    """The classifier's pre-softmax logits: the input of its Softmax."""
    return next(node.input[0] for node in model.graph.node if node.op_type == "Softmax")


def run(built: GradientGraph, images: np.ndarray, seeds: np.ndarray, names: list[str]) -> list[np.ndarray]:
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(names, {"input": images[..., None], built.seed_input: seeds.astype(np.float32)})


@pytest.fixture(scope="module")
def classifier() -> onnx.ModelProto:
    return onnx.load(str(ROOT / "models" / "classifier.onnx"))


@pytest.fixture(scope="module")
def images(mnist_test: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return mnist_test[0][:DIGITS].astype(np.float32) / 255


@pytest.mark.parametrize("rules", ["gradient", "guided"])
def test_the_attribution_graph_equals_the_builder_on_the_model_file_for_every_target(
    classifier: onnx.ModelProto, images: np.ndarray, rules: str
) -> None:
    built = gradient_graph(classifier, logits_of(classifier), ["input", *LAYERS], rules=rules)
    weights = classifier_weights(classifier)  # held: the graphs keep only a weak reference
    for target in range(10):
        targets = np.full(DIGITS, target)
        file_grads = run(built, images, np.eye(10, dtype=np.float32)[targets], list(built.gradients.values()))
        ours = dict(zip(built.gradients, file_grads, strict=True))
        served = graphs_of(weights).backward(
            images, targets, ["input_grad", *(f"{layer}_grad" for layer in LAYERS)], rules == "guided"
        )
        pairs = {"input": (served["input_grad"], ours["input"][..., 0])}
        pairs.update({layer: (served[f"{layer}_grad"].transpose(0, 2, 3, 1), ours[layer]) for layer in LAYERS})
        for name, (actual, expected) in pairs.items():
            np.testing.assert_allclose(
                actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max(), err_msg=f"{name}, target {target}"
            )


def test_an_all_zero_seed_row_differentiates_the_image_s_predicted_class(
    classifier: onnx.ModelProto, images: np.ndarray
) -> None:
    built = gradient_graph(classifier, logits_of(classifier), outputs=["output"], predicted_from="output")
    probabilities = run(built, images, np.zeros((DIGITS, 10), np.float32), ["output"])[0]
    predicted = np.eye(10, dtype=np.float32)[probabilities.argmax(axis=1)]
    seeds = np.eye(10, dtype=np.float32)[np.arange(DIGITS) % 10]
    seeds[::2] = 0  # every other image: its predicted class
    expected_seeds = np.where(np.arange(DIGITS)[:, None] % 2 == 0, predicted, seeds)
    grads, used = run(built, images, seeds, [built.gradients["input"], built.seed_used])
    expected = run(built, images, expected_seeds, [built.gradients["input"]])[0]
    np.testing.assert_array_equal(used, expected_seeds)
    np.testing.assert_array_equal(grads, expected)


def test_the_attribution_graph_reports_the_predicted_class_s_logit(
    classifier: onnx.ModelProto, images: np.ndarray
) -> None:
    logits = logits_of(classifier)
    file_logits = run(gradient_graph(classifier, logits, outputs=[logits]), images, np.zeros((DIGITS, 10)), [logits])
    weights = classifier_weights(classifier)  # held: the graphs keep only a weak reference
    result = graphs_of(weights).backward(images, np.full(DIGITS, PREDICTED), ["logits"])
    largest = file_logits[0].max(axis=1)
    np.testing.assert_allclose(result["logits"], largest, rtol=0, atol=1e-5 * np.abs(largest).max())


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layers_gradient_alone_is_the_full_backward_passes(classifier: onnx.ModelProto, images: np.ndarray, layer):
    weights = classifier_weights(classifier)  # a fresh object: graphs of its own
    targets = np.full(DIGITS, PREDICTED)
    asked = [layer, f"{layer}_grad", "logits"]
    alone = graphs_of(weights).backward(images, targets, asked)
    full = graphs_of(weights).backward(images, targets, ["input_grad", *asked])
    for name in asked:
        np.testing.assert_allclose(alone[name], full[name], rtol=1e-5, atol=1e-6)


def test_unspecialised_graphs_answer_every_gradient_from_one_backward_model(
    classifier: onnx.ModelProto, images: np.ndarray
) -> None:
    weights = classifier_weights(classifier)
    graphs = graphs_of(weights, specialised=False)
    for layer in LAYERS:
        graphs.backward(images, np.full(DIGITS, PREDICTED), [f"{layer}_grad"])
    graphs.backward(images, np.full(DIGITS, PREDICTED), ["input_grad"])
    assert len(graphs._sessions) == 1
