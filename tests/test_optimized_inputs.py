"""The shipped optimized inputs really excite their filters, checked through onnxruntime alone (independent of the
TensorFlow that made them): among the filters active on at least one test image, for at least 90 % the mean
activation on the filter's optimized input exceeds its mean activation on every one of the 10,000 test images."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tests.helpers import MODELS

LAYERS = ("conv1", "conv2", "pool")


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def optimized() -> dict[str, np.ndarray]:
    statistics = json.loads((MODELS / "statistics.json").read_text())
    with np.load(MODELS / statistics["optimized_inputs"]["file"]) as archive:
        return {name: archive[name] for name in archive.files}


def logits_weights() -> tuple[np.ndarray, np.ndarray]:
    arrays = [numpy_helper.to_array(i) for i in onnx.load(str(MODELS / "classifier.onnx")).graph.initializer]
    return next(a for a in arrays if a.shape == (128, 10)), next(a for a in arrays if a.shape == (10,))


def objectives(session, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per layer each filter's mean activation (N, C), and each class's logit (N, 10), of uint8 images."""
    weights, bias = logits_weights()
    found: dict[str, list[np.ndarray]] = {name: [] for name in (*LAYERS, "classes")}
    for start in range(0, len(images), 1000):
        batch = (images[start : start + 1000].astype(np.float32) / 255.0)[..., None]
        *maps, dense1 = session.run([*LAYERS, "dense1"], {"input": batch})
        for layer, values in zip(LAYERS, maps):
            found[layer].append(values.mean(axis=(1, 2)))
        found["classes"].append(dense1 @ weights + bias)
    return {name: np.concatenate(parts) for name, parts in found.items()}


def test_optimized_inputs_are_8_bit_images_one_per_filter_and_class(optimized):
    assert {name: a.shape for name, a in optimized.items()} == {
        "conv1": (32, 28, 28),
        "conv2": (64, 28, 28),
        "pool": (64, 28, 28),
        "classes": (10, 28, 28),
    }
    assert all(a.dtype == np.uint8 for a in optimized.values())


def test_nine_in_ten_optimized_inputs_excite_their_filter_more_than_every_test_image(session, optimized, mnist_test):
    dataset = objectives(session, mnist_test[0])
    beats = alive = 0
    for name, images in optimized.items():
        reached = np.diagonal(objectives(session, images)[name])
        best = dataset[name].max(axis=0)
        mask = best > 0
        alive += int(mask.sum())
        beats += int((reached[mask] > best[mask]).sum())
    assert alive > 150
    assert beats / alive >= 0.9, f"{beats} of {alive}"


def test_the_statistics_record_the_same_activations(session, optimized):
    statistics = json.loads((MODELS / "statistics.json").read_text())["optimized_inputs"]
    for name, images in optimized.items():
        reached = np.diagonal(objectives(session, images)[name])
        np.testing.assert_allclose(statistics["layers"][name]["activation"], reached, rtol=1e-4, atol=1e-5)
