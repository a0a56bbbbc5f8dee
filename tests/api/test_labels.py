"""``labels=true|false`` on the PNG pictures: each tile's filter index (top images: label and norm under each
image) and a one-line caption; on by default where the PNG is looked at as is, off where it is a data picture;
gaps are mid-gray everywhere."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from service.pictures.grids import GAP
from service.pictures.labels import (
    CAPTION_SIZE,
    UNDER_SIZE,
    caption,
    line_height,
    tile_origins,
    with_caption,
    zero_note,
)
from tests.helpers import decode_png, post_image

# endpoint -> (method, path, parameters, labelled by default)
PICTURES = {
    "activations": ("POST", "/v1/activations/conv2", {"format": "png"}, False),
    "deconvolution grid": ("POST", "/v1/deconvolution/conv1", {}, False),
    "autoencoder code": ("POST", "/v1/autoencoder/encode", {"format": "png"}, False),
    "conv1 weights": ("GET", "/v1/filters/conv1/weights", {"format": "png"}, True),
    "top images": ("GET", "/v1/filters/conv2/5/top-images", {"format": "png"}, True),
}


def picture(client, digit_png, name: str, **params) -> np.ndarray:
    method, path, defaults, _ = PICTURES[name]
    if method == "POST":
        response = post_image(client, path, digit_png, **defaults, **params)
    else:
        response = client.get(path, params={**defaults, **params})
    assert response.status_code == 200, response.text
    return np.array(decode_png(response))


def outside_index_corners(image: np.ndarray, origins: list[tuple[int, int]]) -> np.ndarray:
    out = image.copy()
    for x, y in origins:
        out[y : y + 16, x : x + 24] = 0
    return out


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_each_picture_has_its_default(client, digit_png, name):
    labelled_by_default = PICTURES[name][3]
    default = picture(client, digit_png, name)
    assert np.array_equal(default, picture(client, digit_png, name, labels=str(labelled_by_default).lower()))
    assert not np.array_equal(default, picture(client, digit_png, name, labels=str(not labelled_by_default).lower()))


def test_a_labelled_grid_is_taller_by_its_wrapped_caption_with_its_tiles_where_they_were(client, digit_png):
    plain = picture(client, digit_png, "activations", scale=2)
    labelled = picture(client, digit_png, "activations", scale=2, labels="true")
    height, width = plain.shape
    assert labelled.shape[0] >= height + line_height(CAPTION_SIZE) and labelled.shape[1] == width
    origins = tile_origins(64, 8, (48, 48), 2)
    top = labelled[:height, :width]
    assert np.array_equal(outside_index_corners(top, origins), outside_index_corners(plain, origins))


def test_labelled_top_images_have_a_strip_under_each_row_and_a_caption(client, digit_png):
    plain = picture(client, digit_png, "top images", labels="false")
    labelled = picture(client, digit_png, "top images")
    assert labelled.shape[0] == plain.shape[0] + 3 * line_height(UNDER_SIZE) + line_height(CAPTION_SIZE)
    assert np.array_equal(labelled[:112, : plain.shape[1]], plain[:112])  # the first row of images, untouched


@pytest.mark.parametrize(
    ("name", "gap_row"),
    [
        ("activations", 24),  # conv2: 24x24 tiles
        ("deconvolution grid", 28),
        ("autoencoder code", 4),
        ("conv1 weights", 3),
        ("top images", 28),
    ],
)
def test_the_gaps_between_tiles_are_mid_gray(client, digit_png, name, gap_row):
    image = picture(client, digit_png, name, scale=1, labels="false")
    assert (image[gap_row] == GAP).all()


def test_the_inspect_grids_have_mid_gray_gaps_and_their_geometry(client, digit_png):
    grid = post_image(client, "/v1/inspect", digit_png).json()["layers"][0]["grid"]
    image = np.array(Image.open(io.BytesIO(base64.b64decode(grid["image"].split(",", 1)[1]))))
    assert image.shape == (grid["height"], grid["width"]) == (161, 161)
    assert (image[26] == GAP).all() and (image[:, 26] == GAP).all()


def test_maps_zero_everywhere_render_black_and_the_caption_counts_them(client, digit_png):
    maps = np.moveaxis(np.array(post_image(client, "/v1/activations/conv2", digit_png).json()["values"]), -1, 0)
    zero = [k for k in range(64) if not maps[k].any()]
    assert zero, "the test digit should leave some conv2 maps at zero"
    labelled = picture(client, digit_png, "activations", scale=1, labels="true")
    for k in zero:
        x, y = tile_origins(64, 8, (24, 24), 1)[k]
        assert not outside_index_corners(labelled, [(x, y)])[y : y + 24, x : x + 24].any()
    text = caption("conv2 of classifier", "the uploaded image", "each map min-max scaled on its own", zero_note(maps))
    assert zero_note(maps) == f"{len(zero)} of 64 maps {'is' if len(zero) == 1 else 'are'} zero everywhere"
    grid_height = 8 * 24 + 7
    expected = with_caption(np.zeros((grid_height, labelled.shape[1]), np.uint8), text)
    assert np.array_equal(labelled[grid_height:], expected[grid_height:])


def test_a_dense_layers_strip_gets_the_caption_too(client, digit_png):
    plain = np.array(decode_png(post_image(client, "/v1/activations/dense1", digit_png, format="png", scale=1)))
    labelled = np.array(
        decode_png(post_image(client, "/v1/activations/dense1", digit_png, format="png", scale=1, labels="true"))
    )
    assert labelled.shape[0] == plain.shape[0] + line_height(CAPTION_SIZE)
    assert np.array_equal(labelled[: plain.shape[0], : plain.shape[1]], plain)
