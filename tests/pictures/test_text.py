"""The cached-glyph text renderer (``labels.draw_text``, ``labels.text_width``) against Pillow's ``ImageDraw.text`` and
``getlength``: the same pixels on gray and on colour, the same clipping, the same widths and the same wrapped
captions."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.pictures.grids import GAP
from service.pictures.labels import CAPTION_SIZE, INK, MARGIN, draw_text, font, line_height, text_width, with_caption

RNG = np.random.default_rng(11)
CHARACTERS = string.printable[:95] + "·−–×°µé"
TEXTS = [
    "grad-cam for class 7 (p = 0.999) · jet colour map",
    "wrap extra words",  # glyphs whose antialiased edges overlap
    "-1.23e-05",
    "0.000427",
    "conv2 of classifier · each min-max scaled",
    "AVAWATTO fj ff ||| ;;; ```",
    "  two  spaces  ",
]


def drawn_by_pillow(board: np.ndarray, xy: tuple[int, int], text: str, size: int, ink: int) -> np.ndarray:
    image = Image.fromarray(board.copy())
    fill = ink if board.ndim == 2 else (ink, ink, ink)
    ImageDraw.Draw(image).text(xy, text, fill=fill, font=font(size))
    return np.asarray(image)


def drawn(board: np.ndarray, xy: tuple[int, int], text: str, size: int, ink: int) -> np.ndarray:
    out = board.copy()
    draw_text(out, xy, text, size, ink)
    return out


def random_texts(count: int) -> list[str]:
    return ["".join(RNG.choice(list(CHARACTERS), int(RNG.integers(1, 40)))) for _ in range(count)]


@pytest.mark.parametrize("size", [8, 10, 11, 12])
def test_text_on_the_mid_gray_board_is_the_pixels_pillow_draws(size):
    board = np.full((24, 400), GAP, np.uint8)
    for text in TEXTS + random_texts(40):
        expected = drawn_by_pillow(board, (MARGIN, MARGIN), text, size, INK)
        np.testing.assert_array_equal(drawn(board, (MARGIN, MARGIN), text, size, INK), expected, err_msg=text)


def test_text_blends_its_ink_into_a_colour_board_as_pillow_does():
    for text in TEXTS + random_texts(40):
        board = RNG.integers(0, 256, (20, 300, 3), dtype=np.uint8)
        ink, size = int(RNG.integers(0, 256)), int(RNG.integers(8, 13))
        expected = drawn_by_pillow(board, (2, 1), text, size, ink)
        np.testing.assert_array_equal(drawn(board, (2, 1), text, size, ink), expected, err_msg=text)


@pytest.mark.parametrize("xy", [(-17, 2), (-3, -6), (120, 4), (60, 12), (150, 0), (-200, 0)])
def test_text_running_off_the_board_is_clipped_where_pillow_clips_it(xy):
    board = RNG.integers(0, 256, (16, 150), dtype=np.uint8)
    for text in TEXTS:
        np.testing.assert_array_equal(drawn(board, xy, text, 12, 30), drawn_by_pillow(board, xy, text, 12, 30))


@pytest.mark.parametrize("size", [8, 10, 11, 12])
def test_text_width_is_pillows_length_rounded_up_with_the_margins(size):
    for text in TEXTS + random_texts(100):
        assert text_width(text, size) == math.ceil(font(size).getlength(text)) + 2 * MARGIN, text


def test_a_long_caption_is_pillows_text_wrapped_greedily_to_the_pictures_width():
    text = "grad-cam for class 7 (p = 0.999) · jet colour map · conv2 of classifier · each min-max scaled"
    width = 224
    lines = [""]
    for piece in text.split(" "):
        joined = f"{lines[-1]} {piece}" if lines[-1] else piece
        fits = math.ceil(font(CAPTION_SIZE).getlength(joined)) + 2 * MARGIN <= width
        lines[-1:] = [joined] if fits or not lines[-1] else [lines[-1], piece]
    step = line_height(CAPTION_SIZE) - 2 * MARGIN
    image = RNG.integers(0, 256, (30, width), dtype=np.uint8)
    board = np.full((30 + line_height(CAPTION_SIZE) + step * (len(lines) - 1), width), GAP, np.uint8)
    board[:30] = image
    expected = Image.fromarray(board)
    for row, line in enumerate(lines):
        ImageDraw.Draw(expected).text((MARGIN, 30 + MARGIN + row * step), line, fill=INK, font=font(CAPTION_SIZE))
    assert len(lines) >= 3
    np.testing.assert_array_equal(with_caption(image, text), np.asarray(expected))
