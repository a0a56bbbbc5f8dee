"""The legend under heat maps and optimized inputs against one drawn with Pillow: the picture, the interpolated bar,
the numbers under it and the caption, pixel for pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.pictures.grids import GAP
from service.pictures.heatmap import bar_colours
from service.pictures.labels import CAPTION_SIZE, INK, MARGIN, font, line_height
from service.pictures.legend import BAR_HEIGHT, NUMBER_SIZE, gray_bar, number, with_legend

RNG = np.random.default_rng(5)


def legend_by_pillow(picture: np.ndarray, colours: np.ndarray, low: float, high: float, text: str) -> np.ndarray:
    """The legend drawn with ``ImageDraw.text`` on a Pillow canvas, for a caption that fits on one line."""
    height, width = picture.shape[:2]
    bar_top, numbers_top = height + MARGIN, height + MARGIN + BAR_HEIGHT
    caption_top = numbers_top + line_height(NUMBER_SIZE)
    canvas_width = max(width, math.ceil(font(CAPTION_SIZE).getlength(text)) + 2 * MARGIN)
    canvas = Image.new("RGB", (canvas_width, caption_top + line_height(CAPTION_SIZE)), (GAP, GAP, GAP))
    canvas.paste(Image.fromarray(picture).convert("RGB"), (0, 0))
    ends = np.linspace(0, len(colours) - 1, width)
    row = np.stack([np.interp(ends, np.arange(len(colours)), colours[:, c]) for c in range(3)], axis=-1)
    canvas.paste(Image.fromarray(np.repeat(np.rint(row).astype(np.uint8)[None], BAR_HEIGHT, axis=0)), (0, bar_top))
    draw = ImageDraw.Draw(canvas)
    marks = [(number(low), 0.0), (number(high), 1.0)] + ([("0", -low / (high - low))] if low < 0 < high else [])
    for label, at in marks:
        label_width = math.ceil(font(NUMBER_SIZE).getlength(label))
        left = min(max(0, round(at * width - label_width / 2)), width - label_width)
        draw.text((left, numbers_top + MARGIN // 2), label, fill=(INK,) * 3, font=font(NUMBER_SIZE))
    draw.text((MARGIN, caption_top + MARGIN), text, fill=(INK,) * 3, font=font(CAPTION_SIZE))
    return np.asarray(canvas)


@pytest.mark.parametrize(
    ("colormap", "low", "high"), [("diverging", -0.0123, 0.456), ("jet", 0.0, 3.2e-05), ("jet", 12.5, 980.0)]
)
def test_a_heat_maps_legend_is_the_one_pillow_draws(colormap, low, high):
    picture = RNG.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    text = f"grad-cam for class 7 · {colormap}"
    expected = legend_by_pillow(picture, bar_colours(colormap), low, high, text)
    np.testing.assert_array_equal(with_legend(picture, bar_colours(colormap), low, high, text), expected)


def test_a_gray_pictures_legend_is_the_one_pillow_draws():
    picture = RNG.integers(0, 256, (96, 180), dtype=np.uint8)
    expected = legend_by_pillow(picture, gray_bar(), 0.0, 1.0, "conv2 filter 5")
    np.testing.assert_array_equal(with_legend(picture, gray_bar(), 0.0, 1.0, "conv2 filter 5"), expected)


def test_a_legend_under_a_narrow_picture_widens_the_canvas_for_its_caption_as_pillow_draws_it():
    picture = RNG.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    text = "saliency for class 3 (p = 0.412)"
    expected = legend_by_pillow(picture, bar_colours("diverging"), -2.5, 7.0, text)
    out = with_legend(picture, bar_colours("diverging"), -2.5, 7.0, text)
    assert out.shape[1] > 28
    np.testing.assert_array_equal(out, expected)
