"""Deconvolution through HTTP equals independent computations: numpy loops for conv1, TensorFlow for the deconvnet."""

import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import numpy_helper

from tests.api.conftest import MODELS
from tests.helpers import decode_png, post_image


@pytest.fixture(scope="module")
def kernels() -> dict[str, np.ndarray]:
    """conv1 and conv2 weights read straight from the ONNX file (OIHW, told apart by shape), as HWIO."""
    found = {}
    for init in onnx.load(str(MODELS / "classifier.onnx")).graph.initializer:
        array = numpy_helper.to_array(init)
        if array.shape == (32, 1, 3, 3):
            found["conv1"] = array.transpose(2, 3, 1, 0)
        elif array.shape == (64, 32, 3, 3):
            found["conv2"] = array.transpose(2, 3, 1, 0)
    return found


def activations(client, digit_png, layer):
    return np.array(post_image(client, f"/v1/activations/{layer}", digit_png).json()["values"], dtype=np.float32)


def projection(client, digit_png, layer, k):
    body = post_image(client, f"/v1/deconvolution/{layer}/{k}", digit_png, format="json").json()
    assert body["shape"] == [28, 28] and body["filter"] == k and body["layer"] == layer
    return np.array(body["values"])


def tf_transpose(maps: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride-1 valid transposed convolution by TensorFlow (kernel HWIO: in = the output side)."""
    h, w, _ = maps.shape
    out_shape = [1, h + kernel.shape[0] - 1, w + kernel.shape[1] - 1, kernel.shape[2]]
    return tf.nn.conv2d_transpose(maps[None], kernel, out_shape, strides=1, padding="VALID").numpy()[0]


def keep_only(maps: np.ndarray, k: int) -> np.ndarray:
    kept = np.zeros_like(maps)
    kept[..., k] = maps[..., k]
    return kept


@pytest.mark.parametrize("k", [0, 7, 31])
def test_conv1_projection_is_the_transposed_convolution_of_the_single_map(client, digit_png, kernels, k):
    fmap = activations(client, digit_png, "conv1")[..., k]
    expected = np.zeros((28, 28))
    for i in range(26):
        for j in range(26):
            expected[i : i + 3, j : j + 3] += fmap[i, j] * kernels["conv1"][:, :, 0, k]
    assert np.abs(projection(client, digit_png, "conv1", k) - expected).max() <= 1e-4


@pytest.mark.parametrize("k", [3, 40])
def test_conv2_projection_matches_a_tensorflow_deconvnet(client, digit_png, kernels, k):
    below = np.maximum(tf_transpose(keep_only(activations(client, digit_png, "conv2"), k), kernels["conv2"]), 0)
    expected = tf_transpose(below, kernels["conv1"])[..., 0]
    assert np.abs(projection(client, digit_png, "conv2", k) - expected).max() <= 1e-4


@pytest.mark.parametrize("k", [3, 40])
def test_pool_projection_unpools_with_the_forward_pass_switches(client, digit_png, kernels, k):
    conv2 = activations(client, digit_png, "conv2")
    pooled, argmax = tf.nn.max_pool_with_argmax(conv2[None], 2, 2, "VALID")
    unpooled = np.zeros(conv2.size, np.float32)
    unpooled[argmax.numpy().ravel()] = pooled.numpy().ravel()
    unpooled = keep_only(unpooled.reshape(conv2.shape), k)
    below = np.maximum(tf_transpose(unpooled, kernels["conv2"]), 0)
    expected = tf_transpose(below, kernels["conv1"])[..., 0]
    assert np.abs(projection(client, digit_png, "pool", k) - expected).max() <= 1e-4


def test_projection_png_is_28_times_scale(client, digit_png):
    image = decode_png(post_image(client, "/v1/deconvolution/conv2/5", digit_png))
    assert image.size == (224, 224) and image.mode == "L"


@pytest.mark.parametrize(("layer", "size"), [("conv1", (6 * 29 - 1) * 2), ("pool", (8 * 29 - 1) * 2)])
def test_projection_grid_png_holds_every_filter(client, digit_png, layer, size):
    image = decode_png(post_image(client, f"/v1/deconvolution/{layer}", digit_png))
    assert image.size == (size, size)


def test_dense_layers_cannot_be_projected(client, digit_png):
    response = post_image(client, "/v1/deconvolution/dense1/0", digit_png)
    assert response.status_code == 422
    assert "deconvolution is defined for the classifier's conv1, conv2, pool" in response.json()["error"]
