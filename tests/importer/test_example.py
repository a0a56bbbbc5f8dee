"""The shipped example (``examples/models/mnist-cnn.onnx``, trained by ``examples/train_mnist_cnn.py``) imports as
``make import-example`` imports it, classifies the real MNIST test split as the docs state, and its exposed layers
are PyTorch's own intermediate tensors of the same network with the file's weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from service.contract import IMPORTED_DIR, MANIFEST_FILE, ImportedModel, read_document
from service.images.decoding import decode
from service.images.preprocessing import digit_input
from service.importer import main
from service.runtime.imported import load_imported
from tests.helpers import ROOT, encode
from tests.importer.frameworks import exposed_against_framework, framework_name, intermediate_outputs
from tests.importer.over_http import activations, serving

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
TRAINER = ROOT / "examples" / "train_mnist_cnn.py"
STATED_ACCURACY = 0.9830  # docs/your-own-model.md and examples/train_mnist_cnn.py


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example") / "models"
    assert main([str(EXAMPLE), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def served(models):
    loaded, skipped = load_imported(models)
    assert skipped == {}
    return loaded["mnist-cnn"]


def torch_network() -> torch.nn.Module:
    """The example's PyTorch network with the weights read back from the shipped ONNX file (the TorchScript
    exporter keeps each parameter and buffer under its state_dict name)."""
    spec = importlib.util.spec_from_file_location("train_mnist_cnn", TRAINER)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    network = trainer.MnistCnn()
    weights = {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in onnx.load(EXAMPLE).graph.initializer
    }
    state = network.state_dict()
    network.load_state_dict({name: weights.get(name, value) for name, value in state.items()})
    return network.eval()


def test_the_example_is_under_one_megabyte():
    assert EXAMPLE.stat().st_size < 1 << 20


def test_the_manifest_keeps_the_users_file_and_the_mnist_preprocessing(models):
    manifest = read_document(models / IMPORTED_DIR / "mnist-cnn" / MANIFEST_FILE, ImportedModel)
    assert (models / IMPORTED_DIR / "mnist-cnn" / manifest.source.file).read_bytes() == EXAMPLE.read_bytes()
    assert (manifest.preprocessing.kind, manifest.input.channels, manifest.input.height) == ("mnist", 1, 28)
    assert manifest.outputs_logits and manifest.labels == [str(digit) for digit in range(10)]


def test_the_example_classifies_the_real_test_split_as_stated(served, mnist_test):
    images, labels = mnist_test
    probabilities = served.run(images.astype(np.float32) / 255.0, [served.manifest.probabilities])
    accuracy = float((probabilities[served.manifest.probabilities].argmax(1) == labels).mean())
    assert (
        abs(accuracy - STATED_ACCURACY) <= 5e-4
    )  # PyTorch's and onnxruntime's float sums may differ on an image or so


def test_every_exposed_layer_is_the_pytorch_tensor_it_names(served, mnist_test):
    images = mnist_test[0][:8].astype(np.float32)[:, np.newaxis] / 255.0
    network = torch_network()
    exposed = served.run(images, [layer.name for layer in served.manifest.layers])
    deltas = exposed_against_framework(served.manifest, exposed, intermediate_outputs(network, images), network)
    assert len(deltas) == len(served.manifest.layers) - 2
    assert max(deltas.values()) <= 1e-4
    with torch.no_grad():
        expected = torch.softmax(network(torch.from_numpy(images)), 1).numpy()
    assert np.abs(exposed[served.manifest.probabilities] - expected).max() <= 1e-4


def test_over_http_a_digit_its_layers_and_v2_answer_as_pytorch(models, served, mnist_test):
    network, manifest = torch_network(), served.manifest
    png = encode(mnist_test[0][0])
    tensor = digit_input(decode(png, max_pixels=10**6), manifest.input, manifest.preprocessing)
    layer = manifest.layers[2].name
    with torch.no_grad():
        expected = torch.softmax(network(torch.from_numpy(tensor)), 1).numpy()[0]
    layer_expected = intermediate_outputs(network, tensor)[framework_name(layer, network)][0]
    batch = mnist_test[0][:3].astype(np.float32)[:, np.newaxis] / 255.0
    with torch.no_grad():
        batch_expected = torch.softmax(network(torch.from_numpy(batch)), 1).numpy()
    document = {
        "inputs": [{"name": "input", "shape": [3, 1, 28, 28], "datatype": "FP32", "data": batch.ravel().tolist()}]
    }
    with serving(models) as client:
        answer = client.post("/v1/classify?model=mnist-cnn", content=png, headers={"content-type": "image/png"}).json()
        shown = activations(client, "mnist-cnn", layer, png)
        v2 = client.post("/v2/models/mnist-cnn/infer", json=document).json()
    assert np.abs(np.array(answer["probabilities"]) - expected).max() <= 1e-4
    assert answer["label"] == str(mnist_test[1][0]) and answer["digit"] == mnist_test[1][0]
    assert np.abs(shown - layer_expected).max() <= 1e-4
    probabilities = next(out for out in v2["outputs"] if out["name"] == manifest.probabilities)
    assert np.abs(np.array(probabilities["data"]).reshape(3, 10) - batch_expected).max() <= 1e-4
    assert {out["name"] for out in v2["outputs"]} == {layer.name for layer in manifest.layers}
