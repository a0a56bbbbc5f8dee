"""A picture's legend: a colour bar under it, the values at its ends (and 0 in the middle of a diverging bar), and a
one-line caption, on the mid-gray board of the other labels. Heat maps and optimized inputs carry it with
``labels=true``; the picture above keeps its pixels, the legend only adds rows."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from service.pictures.grids import GAP
from service.pictures.labels import INK, MARGIN, font, line_height, text_width, with_caption

BAR_HEIGHT = 10  # px
NUMBER_SIZE = 11  # px, the values under the bar


def number(value: float) -> str:
    """A value at the bar's end, as ``X-Colormap-Range`` gives it to three significant digits."""
    return f"{value:.3g}"


def with_legend(picture: np.ndarray, colours: np.ndarray, low: float, high: float, text: str) -> np.ndarray:
    """``picture`` (H, W, 3) or (H, W) uint8 with, under it, a bar of ``colours`` (N, 3) from ``low`` to ``high`` as
    wide as the picture, the two values under its ends (0 under its middle when ``low`` < 0 < ``high``), and
    ``text`` wrapped to the picture's width. Returns RGB (H + legend, W', 3)."""
    rgb = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture
    height, width = rgb.shape[:2]
    positions = np.linspace(0, len(colours) - 1, width)
    bar_row = np.stack([np.interp(positions, np.arange(len(colours)), colours[:, c]) for c in range(3)], axis=-1)
    numbers_height = line_height(NUMBER_SIZE)
    board = np.full((height + MARGIN + BAR_HEIGHT + numbers_height, width, 3), GAP, np.uint8)
    board[:height] = rgb
    board[height + MARGIN : height + MARGIN + BAR_HEIGHT] = np.rint(bar_row).astype(np.uint8)
    canvas = Image.fromarray(board, mode="RGB")
    draw = ImageDraw.Draw(canvas)
    top = height + MARGIN + BAR_HEIGHT + MARGIN // 2
    marks = [(number(low), 0.0), (number(high), 1.0)]
    if low < 0 < high:
        marks.append(("0", -low / (high - low)))
    for label, at in marks:
        label_width = text_width(label, NUMBER_SIZE) - 2 * MARGIN
        left = min(max(0, round(at * width - label_width / 2)), width - label_width)
        draw.text((left, top), label, fill=(INK, INK, INK), font=font(NUMBER_SIZE))
    gray = np.asarray(canvas.convert("L"))
    with_text = with_caption(gray, text)
    out = np.repeat(with_text[..., None], 3, axis=2)
    out[: board.shape[0], :width] = np.asarray(canvas)
    return out


def gray_bar() -> np.ndarray:
    """The colours of a gray picture's bar: black to white (256, 3)."""
    return np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
