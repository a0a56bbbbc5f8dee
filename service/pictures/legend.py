"""A picture's legend: a colour bar under it, the values at its ends (and 0 in the middle of a diverging bar), and a
one-line caption, on the mid-gray board of the other labels. Heat maps and optimized inputs carry it with
``labels=true``; the picture above keeps its pixels, the legend only adds rows."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from service.pictures.grids import GAP
from service.pictures.labels import MARGIN, caption_strip, draw_text, line_height, text_width

BAR_HEIGHT = 10  # px
NUMBER_SIZE = 11  # px, the values under the bar
BARS = 64  # bars (colour map and width) whose row is kept


def number(value: float) -> str:
    """A value at the bar's end, as ``X-Colormap-Range`` gives it to three significant digits."""
    return f"{value:.3g}"


@lru_cache(maxsize=BARS)
def bar_row(colours: bytes, count: int, width: int) -> np.ndarray:
    """One row (width, 3) uint8 of the bar: the ``count`` colours (float64 RGB, as bytes) interpolated across
    ``width`` columns (kept for the last ``BARS`` colour maps and widths)."""
    anchors = np.frombuffer(colours, np.float64).reshape(count, 3)
    positions = np.linspace(0, count - 1, width)
    row = np.stack([np.interp(positions, np.arange(count), anchors[:, c]) for c in range(3)], axis=-1)
    return np.rint(row).astype(np.uint8)


def gray_into_rgb(rgb: np.ndarray, gray: np.ndarray) -> None:
    """Writes ``gray`` (H, W) into each channel of ``rgb`` (H, W, 3): a channel at a time, several times faster than
    numpy's broadcast of a trailing axis of 1 to 3."""
    for channel in range(3):
        rgb[..., channel] = gray


def with_legend(picture: np.ndarray, colours: np.ndarray, low: float, high: float, text: str) -> np.ndarray:
    """``picture`` (H, W, 3) or (H, W) uint8 with, under it, a bar of ``colours`` (N, 3) from ``low`` to ``high`` as
    wide as the picture, the two values under its ends (0 under its middle when ``low`` < 0 < ``high``), and
    ``text`` wrapped to the picture's width. Returns RGB (H + legend, W', 3).

    The numbers and the caption are drawn on one gray strip, written into each channel under the bar; the picture
    and the bar are copied into the output once."""
    height, width = picture.shape[:2]
    numbers_top = height + MARGIN + BAR_HEIGHT
    board_height = numbers_top + line_height(NUMBER_SIZE)
    strip = caption_strip(text, width, top=board_height - numbers_top)
    numbers = strip[: board_height - numbers_top, :width]
    marks = [(number(low), 0.0), (number(high), 1.0)]
    if low < 0 < high:
        marks.append(("0", -low / (high - low)))
    for label, at in marks:
        label_width = text_width(label, NUMBER_SIZE) - 2 * MARGIN
        left = min(max(0, round(at * width - label_width / 2)), width - label_width)
        draw_text(numbers, (left, MARGIN // 2), label, NUMBER_SIZE)
    out = np.empty((numbers_top + strip.shape[0], strip.shape[1], 3), np.uint8)
    if picture.ndim == 3:
        out[:height, :width] = picture
    else:
        gray_into_rgb(out[:height, :width], picture)
    out[:numbers_top, width:] = GAP
    out[height:numbers_top, :width] = GAP
    colours = np.ascontiguousarray(colours, np.float64)
    out[height + MARGIN : numbers_top, :width] = bar_row(colours.tobytes(), len(colours), width)
    gray_into_rgb(out[numbers_top:], strip)
    return out


def gray_bar() -> np.ndarray:
    """The colours of a gray picture's bar: black to white (256, 3)."""
    return np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
