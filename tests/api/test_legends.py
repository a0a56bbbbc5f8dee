"""``labels=true`` on heat maps and optimized inputs: the picture keeps its pixels and gains a colour bar as wide as it,
from the low end of ``X-Colormap-Range`` to the high end, with those values under it and a one-line caption."""

from __future__ import annotations

import numpy as np
import pytest

from service.pictures.heatmap import DIVERGING, SEQUENTIAL, bar_colours
from service.pictures.labels import MARGIN
from service.pictures.legend import BAR_HEIGHT, number, with_legend
from tests.helpers import decode_png, post_image

METHODS = [
    "saliency",
    "gradient-x-input",
    "guided-backprop",
    "integrated-gradients",
    "smoothgrad",
    "grad-cam",
    "occlusion",
]


def pixels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(decode_png(response).convert("RGB")).astype(int)


def bar_row(picture: np.ndarray, height: int) -> np.ndarray:
    """The middle row of the colour bar under a picture ``height`` px tall."""
    return picture[height + MARGIN + BAR_HEIGHT // 2]


@pytest.mark.parametrize("method", METHODS)
def test_a_labelled_heat_map_is_the_plain_one_above_a_colour_bar_of_its_range(client, digit_png, method):
    plain = post_image(client, f"/v1/attribution/{method}", digit_png, labels="false", scale=8)
    labelled = post_image(client, f"/v1/attribution/{method}", digit_png, labels="true", scale=8)
    assert labelled.headers["X-Colormap-Range"] == plain.headers["X-Colormap-Range"]
    top, picture = pixels(plain), pixels(labelled)
    height, width = top.shape[:2]
    assert picture.shape[0] > height + BAR_HEIGHT and picture.shape[1] == width
    np.testing.assert_array_equal(picture[:height], top)
    anchors = DIVERGING if labelled.headers["X-Colormap"] == "diverging" else SEQUENTIAL
    row = bar_row(picture, height)
    assert np.abs(row[0] - anchors[0][1]).max() <= 2 and np.abs(row[-1] - anchors[-1][1]).max() <= 2


def test_the_heat_maps_legend_is_the_one_drawn_from_its_range_header(client, digit_png):
    plain = post_image(client, "/v1/attribution/saliency", digit_png, labels="false", scale=8)
    labelled = post_image(client, "/v1/attribution/saliency", digit_png, scale=8)
    low, high = map(float, labelled.headers["X-Colormap-Range"].split(","))
    assert number(low) != number(high)
    target = labelled.headers["X-Attribution-Target"]
    probability = float(labelled.headers["X-Attribution-Probability"])
    text = f"saliency for class {target} (p = {probability:.3f}) · diverging colour map"
    expected = with_legend(pixels(plain).astype(np.uint8), bar_colours("diverging"), low, high, text)
    np.testing.assert_array_equal(pixels(labelled), expected)


def test_a_legend_shows_other_numbers_for_another_range():
    picture = np.zeros((64, 200, 3), np.uint8)
    colours = np.array([[0, 0, 0], [255, 255, 255]], float)
    one, other = with_legend(picture, colours, -1.5, 1.5, "t"), with_legend(picture, colours, -0.25, 0.25, "t")
    numbers = slice(64 + MARGIN + BAR_HEIGHT, 64 + MARGIN + BAR_HEIGHT + 14)
    assert not np.array_equal(one[numbers], other[numbers])
    assert one[numbers].min() < 60  # dark digits on the mid-gray board


@pytest.mark.parametrize("path", ["/v1/filters/conv2/5/optimized", "/v1/classes/3/optimized"])
def test_an_optimized_input_carries_a_gray_bar_from_0_to_1_by_default(client, path):
    plain = client.get(path, params={"labels": "false"})
    labelled = client.get(path)
    assert labelled.headers["X-Colormap-Range"] == "0,1"
    top, picture = pixels(plain), pixels(labelled)
    height = top.shape[0]
    np.testing.assert_array_equal(picture[:height], top)
    row = bar_row(picture, height)
    assert row[0].max() <= 1 and row[-1].min() >= 254 and (np.diff(row[:, 0]) >= 0).all()


def test_a_labelled_optimized_grid_adds_the_tiles_indices_and_the_bar(client):
    plain = pixels(client.get("/v1/filters/conv1/optimized", params={"scale": 2}))
    labelled = pixels(client.get("/v1/filters/conv1/optimized", params={"scale": 2, "labels": "true"}))
    height = plain.shape[0]
    assert labelled.shape[0] > height and not np.array_equal(labelled[:height], plain)
    assert bar_row(labelled, height)[-1].min() >= 254


def test_a_labelled_deconvolution_grid_has_no_empty_block_beside_it(client, digit_png):
    plain = np.asarray(decode_png(post_image(client, "/v1/deconvolution/conv2", digit_png)))
    labelled = np.asarray(decode_png(post_image(client, "/v1/deconvolution/conv2", digit_png, labels="true")))
    assert labelled.shape[1] == plain.shape[1]
