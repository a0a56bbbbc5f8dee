"""The feature evolution recorded while the classifier trains, on a small slice of real MNIST, checked against the
exported ONNX classifier; and ``--only classifier`` keeps the shipped autoencoder as it is."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from service.contract import EVOLUTION_FILE, SPATIAL_LAYERS, evolution_key
from service.runtime.registry import load_registry
from service.studies.layers import filter_projections
from tests.helpers import MODELS
from training.config import TrainConfig
from training.data import sha256_of
from training.evolution import recorded_epochs
from training.pipeline import PipelineError, train_and_export

FILTERS = {"conv1": 32, "conv2": 64, "pool": 64}
SUBSET = 2000


@pytest.fixture(scope="module")
def retrained(mnist_dir, tmp_path_factory):
    """The shipped manifest and autoencoder, then ``train --only classifier`` on 2,000 training images, 2 epochs."""
    out = tmp_path_factory.mktemp("models")
    for name in ("manifest.json", "autoencoder.onnx"):
        shutil.copy(MODELS / name, out / name)
    config = TrainConfig(epochs=2, train_limit=2000, test_limit=SUBSET)
    manifest = json.loads(train_and_export(mnist_dir, out, config, only="classifier").read_text())
    with np.load(out / EVOLUTION_FILE) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return out, manifest, arrays


@pytest.fixture(scope="module")
def onnx_norms(retrained, mnist_test):
    """Per layer, the (N, C) L2 norms of the first 2,000 test images under the exported classifier, in plain numpy."""
    out, _, _ = retrained
    session = ort.InferenceSession(str(out / "classifier.onnx"), providers=["CPUExecutionProvider"])
    maps = session.run(list(SPATIAL_LAYERS), {"input": (mnist_test[0][:SUBSET].astype(np.float32) / 255.0)[..., None]})
    return {layer: np.sqrt((m.astype(np.float64) ** 2).sum(axis=(1, 2))) for layer, m in zip(SPATIAL_LAYERS, maps)}


def test_the_epochs_recorded_are_1_2_3_5_8_and_the_last():
    assert recorded_epochs(15) == [1, 2, 3, 5, 8, 15]
    assert recorded_epochs(8) == [1, 2, 3, 5, 8]
    assert recorded_epochs(4) == [1, 2, 3, 4]
    assert recorded_epochs(1) == [1]


def test_the_file_holds_every_filter_of_every_spatial_layer_at_each_recorded_epoch(retrained, mnist_test):
    _, _, arrays = retrained
    assert arrays["epochs"].tolist() == [1, 2]
    assert arrays["subset"].tolist() == list(range(SUBSET))
    for layer, filters in FILTERS.items():
        assert arrays[evolution_key(layer, "index")].shape == (2, filters)
        assert arrays[evolution_key(layer, "norm")].shape == (2, filters)
        assert arrays[evolution_key(layer, "projection")].shape == (2, filters, 28, 28)
        assert arrays[evolution_key(layer, "projection")].dtype == np.float16
        assert np.isin(arrays[evolution_key(layer, "index")], arrays["indices"]).all()
    assert (arrays["images"] == mnist_test[0][arrays["indices"]]).all()


def test_the_manifest_names_the_file_with_its_checksum(retrained):
    out, manifest, _ = retrained
    assert manifest["models"]["classifier"]["evolution"] == {
        "file": EVOLUTION_FILE,
        "sha256": sha256_of(out / EVOLUTION_FILE),
    }


def test_at_the_last_epoch_each_filters_strongest_image_and_norm_are_the_exported_classifiers(retrained, onnx_norms):
    _, _, arrays = retrained
    for layer in SPATIAL_LAYERS:
        recorded, norms = arrays[evolution_key(layer, "norm")][-1], onnx_norms[layer]
        columns = np.arange(norms.shape[1])
        np.testing.assert_allclose(recorded, norms.max(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(norms[arrays[evolution_key(layer, "index")][-1], columns], recorded, rtol=1e-4)


def test_the_filters_change_between_epochs(retrained):
    _, _, arrays = retrained
    for layer in SPATIAL_LAYERS:
        assert not np.allclose(arrays[evolution_key(layer, "norm")][0], arrays[evolution_key(layer, "norm")][1])


def test_at_the_last_epoch_the_projections_are_the_services_with_the_exported_weights(retrained):
    out, _, arrays = retrained
    classifier = load_registry(out, variants=False).models["classifier"]
    images = dict(zip(arrays["indices"].tolist(), arrays["images"]))
    for layer in SPATIAL_LAYERS:
        for k in (0, 7, 31):
            index = int(arrays[evolution_key(layer, "index")][-1, k])
            expected = filter_projections(classifier, images[index][None], layer, k)[0]
            recorded = arrays[evolution_key(layer, "projection")][-1, k].astype(np.float32)
            np.testing.assert_allclose(recorded, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())


def test_only_classifier_keeps_the_autoencoder_file_and_entry_as_they_were(retrained):
    out, manifest, _ = retrained
    shipped = json.loads((MODELS / "manifest.json").read_text())
    assert manifest["models"]["autoencoder"] == shipped["models"]["autoencoder"]
    assert sha256_of(out / "autoencoder.onnx") == shipped["models"]["autoencoder"]["sha256"]
    assert manifest["models"]["classifier"]["sha256"] != shipped["models"]["classifier"]["sha256"]
    assert manifest["models"]["classifier"]["training"]["train_images"] == 2000


def test_only_refuses_when_the_model_to_keep_is_not_there(tmp_path, mnist_dir):
    with pytest.raises(PipelineError, match="cannot keep the autoencoder"):
        train_and_export(mnist_dir, tmp_path, TrainConfig(epochs=1, train_limit=256), only="classifier")
