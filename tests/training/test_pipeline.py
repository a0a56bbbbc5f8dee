"""End to end on a small slice of real MNIST: train -> export -> parity -> manifest."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from training.config import TrainConfig
from training.data import sha256_of
from training.pipeline import train_and_export


@pytest.fixture(scope="module")
def small_run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    config = TrainConfig(epochs=1, autoencoder_epochs=1, train_limit=2000, test_limit=500)
    manifest = json.loads(train_and_export(mnist_dir, out, config).read_text())
    return out, manifest


def test_small_run_writes_both_models_and_the_manifest(small_run):
    out, manifest = small_run
    assert set(manifest["models"]) == {"classifier", "autoencoder"}
    for entry in manifest["models"].values():
        assert (out / entry["file"]).is_file()
        assert entry["sha256"] == sha256_of(out / entry["file"])


def test_classifier_onnx_exposes_every_layer_by_name_in_nhwc(small_run):
    out, _ = small_run
    session = ort.InferenceSession(str(out / "classifier.onnx"))
    names = [o.name for o in session.get_outputs()]
    assert names == ["conv1", "conv2", "pool", "dense1", "output"]
    outputs = session.run(None, {"input": np.zeros((2, 28, 28, 1), np.float32)})
    assert [o.shape for o in outputs] == [(2, 26, 26, 32), (2, 24, 24, 64), (2, 12, 12, 64), (2, 128), (2, 10)]


def test_autoencoder_onnx_exposes_encoded_and_decoded(small_run):
    out, _ = small_run
    session = ort.InferenceSession(str(out / "autoencoder.onnx"))
    shapes = dict(
        zip(
            [o.name for o in session.get_outputs()],
            [o.shape for o in session.run(None, {"input": np.zeros((1, 28, 28, 1), np.float32)})],
        )
    )
    assert shapes["encoded"] == (1, 4, 4, 8) and shapes["decoded"] == (1, 28, 28, 1)


def test_parity_with_keras_is_recorded_within_tolerance(small_run):
    _, manifest = small_run
    for entry in manifest["models"].values():
        assert max(entry["parity_max_abs_diff"].values()) <= 1e-4


def test_manifest_records_configuration_metrics_and_history(small_run):
    _, manifest = small_run
    classifier = manifest["models"]["classifier"]
    assert classifier["total_params"] == 1_199_882
    assert classifier["training"]["train_images"] == 2000 and classifier["training"]["epochs"] == 1
    assert len(classifier["training"]["data_sha256"]) == 4
    metrics = classifier["metrics"]
    assert np.array(metrics["confusion_matrix"]).sum() == 500
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert len(metrics["per_class_accuracy"]) == 10
    assert set(classifier["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert "test_reconstruction_loss" in manifest["models"]["autoencoder"]["metrics"]
    assert manifest["versions"]["onnxruntime"]
