"""Words on the PNG pictures, drawn with Pillow's bundled font (``ImageFont.load_default``): each tile's filter index,
a line of text under tiles, a one-line caption under the whole picture (the layer, the image, the rule), and rows of
maps each named under it. Plain uint8 arrays in and out, no web code: ``service/api/render.py`` encodes them.

Labels never move a grid's tiles: an index is drawn in its tile's corner and the caption only adds rows below: it
wraps to the picture's width, and widens the canvas only for a picture narrower than ``WRAP_MIN_WIDTH``. Text under
tiles adds a strip under each row of tiles.
Text is dark on the mid-gray of the gaps; a tile's index is white with a black outline, legible on any gray.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.pictures.grids import GAP, side_by_side, tile, to_uint8, upscale_nearest

INK = 0  # text on the mid-gray board
CAPTION_SIZE = 12  # px, the caption's font
UNDER_SIZE = 11  # px, text under tiles
ROW_LABEL_SIZE = 10  # px, names under the maps of a row
MARGIN = 3  # px around a line of text
ROW_GAP = 4  # px between the maps of a row
ROW_LABEL_HEIGHT = 16  # px of the names' strip under a row
WRAP_MIN_WIDTH = 160  # px: a caption wraps to pictures at least this wide, and widens narrower ones
TEXT_WIDTHS = 4096  # texts whose width is kept (a few hundred bytes each)


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` px."""
    return ImageFont.load_default(size=size)


def line_height(size: int) -> int:
    """Rows one line of text takes, margins included."""
    ascent, descent = font(size).getmetrics()
    return ascent + descent + 2 * MARGIN


@lru_cache(maxsize=TEXT_WIDTHS)
def text_width(text: str, size: int) -> int:
    """Columns ``text`` takes, margins included (kept for the last ``TEXT_WIDTHS`` texts: a caption's wrapping
    measures every prefix of it, and captions of one route share most of theirs)."""
    return math.ceil(font(size).getlength(text)) + 2 * MARGIN


def caption(*parts: str) -> str:
    """A caption's parts joined with `` · ``, empty ones left out."""
    return " · ".join(part for part in parts if part)


def zero_note(maps: np.ndarray, noun: str = "maps") -> str:
    """How many of the stacked ``maps`` (C, H, W) are zero everywhere (they render black), or "" when none is."""
    zero = int((~np.asarray(maps).reshape(len(maps), -1).any(axis=1)).sum())
    if not zero:
        return ""
    return f"{zero} of {len(maps)} {noun} {'is' if zero == 1 else 'are'} zero everywhere"


def tile_origins(count: int, columns: int, tile_shape: tuple[int, int], pad: int) -> list[tuple[int, int]]:
    """The top-left corner (x, y) of each of ``count`` tiles of ``tile_shape`` (h, w), ``pad`` apart, row-major."""
    height, width = tile_shape
    return [((k % columns) * (width + pad), (k // columns) * (height + pad)) for k in range(count)]


def draw_indices(image: np.ndarray, origins: list[tuple[int, int]], tile_shape: tuple[int, int]) -> np.ndarray:
    """Each tile's index in its top-left corner, in a font that follows the tile's size (8-12 px)."""
    size = min(12, max(8, min(tile_shape) // 3))
    canvas = Image.fromarray(image, mode="L")
    draw = ImageDraw.Draw(canvas)
    for index, (x, y) in enumerate(origins):
        draw.text((x + 2, y + 1), str(index), fill=255, font=font(size), stroke_width=1, stroke_fill=0)
    return np.asarray(canvas)


def wrap(text: str, size: int, width: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` columns (margins included); a word longer than that
    keeps a line of its own."""
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and text_width(candidate, size) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def with_caption(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` under it: the picture keeps its place and pixels, the canvas grows by the caption's
    rows. The caption wraps to the picture's width; under a picture narrower than ``WRAP_MIN_WIDTH`` it stays on one
    line and the canvas grows to its width."""
    height, width = image.shape
    lines = wrap(text, CAPTION_SIZE, width) if width >= WRAP_MIN_WIDTH else [text]
    out_width = max(width, *(text_width(line, CAPTION_SIZE) for line in lines))
    step = line_height(CAPTION_SIZE) - 2 * MARGIN
    out = np.full((height + line_height(CAPTION_SIZE) + step * (len(lines) - 1), out_width), GAP, np.uint8)
    out[:height, :width] = image
    canvas = Image.fromarray(out, mode="L")
    draw = ImageDraw.Draw(canvas)
    for row, line in enumerate(lines):
        draw.text((MARGIN, height + MARGIN + row * step), line, fill=INK, font=font(CAPTION_SIZE))
    return np.asarray(canvas)


def with_text_under(
    image: np.ndarray, origins: list[tuple[int, int]], tile_shape: tuple[int, int], texts: list[str]
) -> np.ndarray:
    """A strip under each row of tiles with ``texts[k]`` centred under the tile at ``origins[k]``; each row of tiles
    moves down by the strips above it. Strips run the picture's full width (blank under tiles without text)."""
    tile_height, tile_width = tile_shape
    strip = line_height(UNDER_SIZE)
    tops = sorted({y for _, y in origins})
    pieces, start = [], 0
    for top in tops:
        pieces += [image[start : top + tile_height], np.full((strip, image.shape[1]), GAP, np.uint8)]
        start = top + tile_height
    pieces.append(image[start:])
    canvas = Image.fromarray(np.concatenate(pieces), mode="L")
    draw = ImageDraw.Draw(canvas)
    for (x, y), text in zip(origins, texts):
        left = x + max(0, (tile_width - text_width(text, UNDER_SIZE)) // 2) + MARGIN
        draw.text((left, y + tops.index(y) * strip + tile_height + MARGIN), text, fill=INK, font=font(UNDER_SIZE))
    return np.asarray(canvas)


def labelled_grid(maps: np.ndarray, scale: int, text: str, noun: str = "maps") -> np.ndarray:
    """``grids.tile`` of ``maps`` (C, H, W) upscaled by ``scale``, with each tile's filter index and the caption
    ``text``, to which it adds how many maps are zero everywhere."""
    count, height, width = maps.shape
    columns = math.ceil(math.sqrt(count))
    shape = (height * scale, width * scale)
    image = upscale_nearest(tile(maps, columns=columns), scale)
    image = draw_indices(image, tile_origins(count, columns, shape, scale), shape)
    return with_caption(image, caption(text, zero_note(maps, noun)))


def labelled_top_images(
    images: np.ndarray, projections: np.ndarray, texts: list[str], scale: int, text: str, columns: int = 3
) -> np.ndarray:
    """``grids.side_by_side`` of a filter's top images and their projections, upscaled by ``scale``, with
    ``texts[k]`` under image k and the caption ``text``."""
    count, height, width = images.shape
    shape = (height * scale, width * scale)
    panel = upscale_nearest(side_by_side(images, projections, columns=columns), scale)
    return with_caption(with_text_under(panel, tile_origins(count, columns, shape, scale), shape, texts), text)


def labelled_row(maps: list[np.ndarray], names: list[str], scale: int) -> np.ndarray:
    """Maps (H, W) side by side, each min-max scaled on its own and upscaled by ``scale``, with its name centred under
    it, ``ROW_GAP`` px apart on mid-gray. Each column is as wide as its tile, or its name when that is wider."""
    tiles = [upscale_nearest(to_uint8(values), scale) for values in maps]
    name_widths = [math.ceil(font(ROW_LABEL_SIZE).getlength(name)) + 2 for name in names]
    widths = [max(pixels.shape[1], width) for pixels, width in zip(tiles, name_widths)]
    height = max(pixels.shape[0] for pixels in tiles)
    canvas = Image.new("L", (sum(widths) + ROW_GAP * (len(tiles) - 1), height + ROW_LABEL_HEIGHT), GAP)
    draw = ImageDraw.Draw(canvas)
    left = 0
    for pixels, name, width, name_width in zip(tiles, names, widths, name_widths):
        canvas.paste(Image.fromarray(pixels, mode="L"), (left + (width - pixels.shape[1]) // 2, 0))
        draw.text((left + (width - name_width) // 2 + 1, height + 2), name, fill=INK, font=font(ROW_LABEL_SIZE))
        left += width + ROW_GAP
    return np.asarray(canvas)
