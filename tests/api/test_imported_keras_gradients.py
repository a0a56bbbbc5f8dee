"""The gradient methods of an NHWC model over HTTP: a small Keras CNN (random weights, 32x32 RGB) converted by
tf2onnx and imported, its saliency and Grad-CAM maps against TensorFlow's own gradients (GradientTape) on the Keras
original. The input maps are in the model's NHWC layout; the layers exposed at its convolutions are NCHW."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from service.importer import ImportOptions, import_model
from tests.importer.over_http import npy_body, serving

SIDE, CLASSES, TARGET = 32, 5, 2


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    folder: Path = tmp_path_factory.mktemp("keras-gradients")
    keras.utils.set_random_seed(0)
    image = keras.Input((SIDE, SIDE, 3))
    first = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(image)
    second = keras.layers.Conv2D(16, 3, activation="relu", name="c2")(first)
    logits = keras.layers.Dense(CLASSES, name="fc")(keras.layers.GlobalAveragePooling2D()(second))
    model = keras.Model(image, logits)
    signature = [tf.TensorSpec((None, SIDE, SIDE, 3), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    onnx.save(proto, str(folder / "small.onnx"))
    import_model(folder / "small.onnx", ImportOptions(name="small", models_dir=folder / "models", softmax="yes"))
    return model, keras.Model(image, second), folder / "models"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, SIDE, SIDE, 3)).astype(np.float32)


def batch(models: Path, method: str, images: np.ndarray, **params) -> np.ndarray:
    with serving(models) as client:
        response = client.post(
            f"/v1/attribution/{method}/batch",
            params={"model": "small", "target": TARGET, **params},
            content=npy_body(images),
            headers={"content-type": "application/octet-stream", "accept": "application/x-npy"},
        )
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def test_saliency_of_an_nhwc_model_is_tensorflow_s_input_gradient_in_nhwc(keras_model, images):
    import tensorflow as tf

    model, _, models = keras_model
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        chosen = model(inputs)[:, TARGET]
    expected = tape.gradient(chosen, inputs).numpy()
    actual = batch(models, "saliency", images)
    assert actual.shape == (2, SIDE, SIDE, 3)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_grad_cam_of_an_nhwc_model_is_tensorflow_s_on_the_last_convolution(keras_model, images):
    import tensorflow as tf

    model, features, models = keras_model
    with tf.GradientTape() as tape:
        maps = features(images)
        tape.watch(maps)
        chosen = model.get_layer("fc")(tf.reduce_mean(maps, axis=(1, 2)))[:, TARGET]
    grads = tape.gradient(chosen, maps).numpy()
    expected = np.maximum((maps.numpy() * grads.mean(axis=(1, 2))[:, None, None, :]).sum(-1), 0)
    actual = batch(models, "grad-cam", images)
    assert actual.shape == expected.shape and actual.max() > 0
    correlation = np.corrcoef(actual.ravel(), expected.ravel())[0, 1]
    assert correlation >= 0.999, correlation
