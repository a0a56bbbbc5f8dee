"""Per-layer activations as JSON and as PNG feature-map grids."""

import math

import numpy as np
import pytest

from tests.helpers import decode_png, post_image

SHAPES = {"conv1": [26, 26, 32], "conv2": [24, 24, 64], "pool": [12, 12, 64], "dense1": [128], "output": [10]}


@pytest.mark.parametrize("layer", SHAPES)
def test_activations_have_the_layers_shape(client, digit_png, layer):
    body = post_image(client, f"/v1/activations/{layer}", digit_png).json()
    assert body["model"] == "classifier" and body["layer"] == layer
    assert body["shape"] == SHAPES[layer]
    assert list(np.array(body["values"]).shape) == SHAPES[layer]


def test_output_activations_are_the_classification_probabilities(client, digit_png):
    output = post_image(client, "/v1/activations/output", digit_png).json()["values"]
    probabilities = post_image(client, "/v1/classify", digit_png).json()["probabilities"]
    assert np.allclose(output, probabilities)


def test_autoencoder_layers_are_served_with_model_autoencoder(client, digit_png):
    body = post_image(client, "/v1/activations/encoded", digit_png, model="autoencoder").json()
    assert body["shape"] == [4, 4, 8] and body["model"] == "autoencoder"


@pytest.mark.parametrize("layer", ["conv1", "conv2", "pool"])
def test_activation_grid_png_has_the_documented_size(client, digit_png, layer):
    height, width, channels = SHAPES[layer]
    columns = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / columns)
    scale = 3
    image = decode_png(post_image(client, f"/v1/activations/{layer}", digit_png, format="png", scale=scale))
    assert image.size == (scale * (columns * width + columns - 1), scale * (rows * height + rows - 1))


def test_single_feature_map_is_the_layers_channel(client, digit_png):
    layer = np.array(post_image(client, "/v1/activations/conv2", digit_png).json()["values"])
    single = post_image(client, "/v1/activations/conv2/17", digit_png).json()
    assert single["shape"] == [24, 24]
    assert np.allclose(single["values"], layer[..., 17])


def test_single_feature_map_png_is_upscaled_by_scale(client, digit_png):
    image = decode_png(post_image(client, "/v1/activations/conv1/0", digit_png, format="png", scale=5))
    assert image.size == (130, 130) and image.mode == "L"
