"""The models shipped in models/ are the ones the manifest describes, and as accurate as it claims."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers import MODELS
from training.data import sha256_of

MANIFEST = json.loads((MODELS / "manifest.json").read_text())


@pytest.mark.parametrize("name", ["classifier", "autoencoder"])
def test_shipped_model_matches_its_manifest_sha256(name):
    entry = MANIFEST["models"][name]
    assert sha256_of(MODELS / entry["file"]) == entry["sha256"]


def test_shipped_classifier_reaches_the_accuracy_the_manifest_claims(mnist_test):
    images, labels = mnist_test
    session = ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])
    x = (images.astype(np.float32) / 255.0)[..., None]
    predicted = np.concatenate(
        [session.run(["output"], {"input": x[i : i + 1000]})[0].argmax(1) for i in range(0, len(x), 1000)]
    )
    accuracy = float((predicted == labels).mean())
    claimed = MANIFEST["models"]["classifier"]["metrics"]["test_accuracy"]
    assert abs(accuracy - claimed) <= 0.0005
    assert accuracy >= 0.992


def test_shipped_autoencoder_reconstructs_test_digits_as_the_manifest_claims(mnist_test):
    images, _ = mnist_test
    session = ort.InferenceSession(str(MODELS / "autoencoder.onnx"), providers=["CPUExecutionProvider"])
    x = (images[:1000].astype(np.float32) / 255.0)[..., None]
    decoded = session.run(["decoded"], {"input": x})[0]
    assert float(((decoded - x) ** 2).mean()) < 2 * MANIFEST["models"]["autoencoder"]["metrics"]["test_mse"]
