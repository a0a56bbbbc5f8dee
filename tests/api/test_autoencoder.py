"""The autoencoder over HTTP: reconstructions and codes."""

import numpy as np

from tests.helpers import decode_png, post_image


def test_reconstruction_is_close_to_the_input_digit(client, digit_png, mnist_test):
    body = post_image(client, "/v1/autoencoder/reconstruct", digit_png, format="json").json()
    assert body["model"] == "autoencoder" and body["shape"] == [28, 28]
    original = mnist_test[0][0] / 255.0
    assert float(((np.array(body["values"]) - original) ** 2).mean()) < 0.02


def test_reconstruction_png_is_28_times_scale(client, digit_png):
    assert decode_png(post_image(client, "/v1/autoencoder/reconstruct", digit_png, scale=4)).size == (112, 112)


def test_encoding_is_the_4x4x8_code(client, digit_png):
    body = post_image(client, "/v1/autoencoder/encode", digit_png).json()
    assert body["shape"] == [4, 4, 8] and np.array(body["values"]).shape == (4, 4, 8)
    layer = post_image(client, "/v1/activations/encoded", digit_png, model="autoencoder").json()["values"]
    assert np.allclose(body["values"], layer)


def test_encoding_png_is_a_grid_of_the_8_channels(client, digit_png):
    image = decode_png(post_image(client, "/v1/autoencoder/encode", digit_png, format="png", scale=10))
    assert image.size == (10 * (3 * 4 + 2), 10 * (3 * 4 + 2))
