"""A Keras MobileNetV2 (random weights, 96 x 96, NHWC) converted by tf2onnx and imported: the exposed copy gives the
file's outputs, its probabilities are Keras' own and every exposed layer is the output of the Keras layer it names
(through a Keras sub-model)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.importer import ImportOptions, import_model
from service.runtime.imported import load_imported
from tests.importer.over_http import classify_batch, infer_binary, serving

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TOLERANCE = 1e-4
SIZE = 96


def keras_layer(node: str) -> str:
    """The Keras layer an exposed layer's node comes from: tf2onnx names a node ``<model>/<layer>_<n>/<op>``, so
    the layer is the second part of the name less Keras' call count (``.../block_1_expand_relu_1/Relu6`` is
    ``block_1_expand_relu``). tf2onnx folds a BatchNormalization into the convolution before it and names the fused
    node after the BatchNormalization, whose output it then is."""
    return re.sub(r"_\d+$", "", node.split("/")[1])


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    folder: Path = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3))
    signature = [tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    onnx.save(proto, str(folder / "mobilenetv2.onnx"))
    manifest = import_model(
        folder / "mobilenetv2.onnx", ImportOptions(name="mobilenetv2", models_dir=folder / "models")
    )
    served = load_imported(folder / "models")[0]["mobilenetv2"]
    images = np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    exposed = served.run(images, [layer.name for layer in manifest.layers])
    features = [layer for layer in manifest.layers if layer.name not in (manifest.logits, manifest.probabilities)]
    names = sorted({keras_layer(layer.node) for layer in features})
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in names])(images, training=False)
    framework = {name: np.asarray(value) for name, value in zip(names, outputs)}
    return manifest, folder / "mobilenetv2.onnx", images, exposed, framework, np.asarray(model(images, training=False))


def test_the_input_is_taken_as_nhwc(imported):
    manifest = imported[0]
    assert (manifest.input.layout, manifest.input.channels, manifest.input.height) == ("nhwc", 3, SIZE)
    assert not manifest.outputs_logits and manifest.logits == "logits"


def test_the_exposed_copy_gives_the_files_outputs(imported):
    manifest, path, images, exposed, _, _ = imported
    (expected,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": images})
    assert np.abs(exposed[manifest.probabilities] - expected).max() <= TOLERANCE


def test_the_probabilities_are_keras_own(imported):
    manifest, _, _, exposed, _, probabilities = imported
    assert np.abs(exposed[manifest.probabilities] - probabilities).max() <= TOLERANCE


def test_every_exposed_layer_is_the_keras_layer_it_names(imported):
    manifest, _, _, exposed, framework, _ = imported
    deltas = {}
    for layer in manifest.layers:
        if layer.name in (manifest.logits, manifest.probabilities):
            continue
        expected = framework[keras_layer(layer.node)]
        # Keras' feature maps are NHWC, the converted graph's NCHW; GlobalAveragePooling2D gives (N, C), the
        # converted GlobalAveragePool (N, C, 1, 1).
        expected = expected.transpose(0, 3, 1, 2) if expected.ndim == 4 else expected.reshape(exposed[layer.name].shape)
        deltas[layer.name] = float(np.abs(exposed[layer.name] - expected).max())
    worst = max(deltas, key=deltas.get)
    assert deltas[worst] <= TOLERANCE, f"{worst} differs by {deltas[worst]:.3g}"


def test_over_http_classify_activations_and_v2_answer_as_keras(imported):
    manifest, path, images, exposed, _, probabilities = imported
    layer = manifest.layers[0].name
    with serving(path.parent / "models") as client:
        batch = classify_batch(client, manifest.name, images)
        v2 = infer_binary(client, manifest.name, manifest.input.name, images, [manifest.probabilities, layer])
    assert np.abs(batch - probabilities).max() <= TOLERANCE
    assert np.abs(v2[manifest.probabilities] - probabilities).max() <= TOLERANCE
    assert np.abs(v2[layer] - exposed[layer]).max() <= TOLERANCE  # exposed: each layer checked against Keras above
