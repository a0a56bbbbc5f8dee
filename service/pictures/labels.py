"""Words on the PNG pictures, drawn with Pillow's bundled font (``ImageFont.load_default``): each tile's filter index,
a line of text under tiles, a one-line caption under the whole picture (the layer, the image, the rule), and rows of
maps each named under it. Plain uint8 arrays in and out, no web code: ``service/api/render.py`` encodes them.

Labels never move a grid's tiles: an index is drawn in its tile's corner and the caption only adds rows below: it
wraps to the picture's width, and widens the canvas only for a picture narrower than ``WRAP_MIN_WIDTH``. Text under
tiles adds a strip under each row of tiles.
Text is dark on the mid-gray of the gaps; a tile's index is white with a black outline, legible on any gray.

Captions (and the legends' numbers and captions) are drawn by ``draw_text`` from glyphs Pillow renders once per
character and size: a line is the glyphs laid out as Pillow's basic layout lays them out (see ``laid_out``) and blended
as ``ImageDraw.text`` blends, so it is the same pixels as ``ImageDraw.text`` in a fraction of its time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
TEXT_GLYPHS = 4096  # characters and sizes whose rendered glyph is kept (about 100 bytes each)
TEXT_WORDS = 4096  # words whose rendered glyphs are kept (a few hundred bytes each)
TEXT_LINES = 1024  # lines whose rendered glyphs are kept (a few kilobytes each)


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` px."""
    return ImageFont.load_default(size=size)


def line_height(size: int) -> int:
    """Rows one line of text takes, margins included."""
    ascent, descent = font(size).getmetrics()
    return ascent + descent + 2 * MARGIN


@dataclass(frozen=True)
class Coverage:
    """How much ink a glyph or a run of text puts on each pixel: ``alpha`` (h, w) uint8 with its top-left corner at
    (``left``, ``top``) px from the pen's start on the ascender line, and the pen's ``advance`` in 1/64 px (FreeType's
    26.6 fixed point)."""

    alpha: np.ndarray
    left: int
    top: int
    advance: int

    def __post_init__(self) -> None:
        self.alpha.flags.writeable = False  # kept in caches and shared between requests


@lru_cache(maxsize=TEXT_GLYPHS)
def glyph(char: str, size: int) -> Coverage:
    """``char`` at ``size`` px, rendered once by Pillow (white on black: its antialiased coverage; kept for the last
    ``TEXT_GLYPHS`` characters and sizes: an imported model's labels may hold any character)."""
    face = font(size)
    left, top, right, bottom = face.getbbox(char)
    advance = round(face.getlength(char) * 64)
    if right <= left or bottom <= top:
        return Coverage(np.zeros((0, 0), np.uint8), 0, 0, advance)
    canvas = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(canvas).text((-left, -top), char, fill=255, font=face)
    return Coverage(np.asarray(canvas), left, top, advance)


def laid_out(parts: list[Coverage]) -> Coverage:
    """``parts`` one after another, as Pillow's basic layout places glyphs (``font_render``): each at the pen rounded
    to a whole pixel (the pen moves by the advances before it), its coverage a laid over the coverage d already there
    as a + d·(255 − a) / 255, with Pillow's rounding. The bundled font's basic layout kerns no pair and its hinted
    advances are whole pixels, so a word laid out once is the same pixels at any pen: ``rendered`` composes lines
    from cached words."""
    pen, placed = 0, []
    for part in parts:
        if part.alpha.size:
            placed.append((((pen + 32) >> 6) + part.left, part.top, part.alpha))
        pen += part.advance
    if not placed:
        return Coverage(np.zeros((0, 0), np.uint8), 0, 0, pen)
    left, top = min(x for x, _, _ in placed), min(y for _, y, _ in placed)
    right = max(x + alpha.shape[1] for x, _, alpha in placed)
    bottom = max(y + alpha.shape[0] for _, y, alpha in placed)
    coverage = np.zeros((bottom - top, right - left), np.uint8)
    for x, y, alpha in placed:
        region = coverage[y - top : y - top + alpha.shape[0], x - left : x - left + alpha.shape[1]]
        mixed = region * (255 - alpha.astype(np.uint16)) + 128
        region[...] = alpha + ((mixed + (mixed >> 8)) >> 8)
    return Coverage(coverage, left, top, pen)


@lru_cache(maxsize=TEXT_WORDS)
def word(text: str, size: int) -> Coverage:
    """A run of text without spaces, laid out glyph by glyph (kept for the last ``TEXT_WORDS`` words)."""
    return laid_out([glyph(char, size) for char in text])


@lru_cache(maxsize=TEXT_LINES)
def rendered(text: str, size: int) -> Coverage:
    """A line of text: its words laid out with spaces between them, or its glyphs one by one when a word's or the
    space's advance is not a whole pixel (kept for the last ``TEXT_LINES`` lines)."""
    space, words = glyph(" ", size), [word(piece, size) for piece in text.split(" ")]
    if space.advance % 64 or any(piece.advance % 64 for piece in words):
        return laid_out([glyph(char, size) for char in text])
    return laid_out([part for piece in words for part in (space, piece)][1:])


def advance(text: str, size: int) -> int:
    """How far ``text`` moves the pen, in 1/64 px: the sum of its glyphs' advances (the basic layout kerns none)."""
    space = glyph(" ", size).advance
    return sum(word(piece, size).advance + space for piece in text.split(" ")) - space


def text_width(text: str, size: int) -> int:
    """Columns ``text`` takes, margins included: Pillow's ``getlength`` rounded up, from the glyphs ``draw_text``
    draws."""
    return -(-advance(text, size) // 64) + 2 * MARGIN


def draw_text(board: np.ndarray, xy: tuple[int, int], text: str, size: int, ink: int = INK) -> None:
    """Draws ``text`` on ``board`` (H, W) or (H, W, C) uint8 in place, its pen starting at ``xy`` on the ascender line
    (``ImageDraw.text``'s default anchor), clipped to the board. Each pixel becomes
    (board·(255 − a) + ink·a) / 255 for the glyphs' coverage a, with the rounding of Pillow's ``draw_bitmap``."""
    line = rendered(text, size)
    left, top = xy[0] + line.left, xy[1] + line.top
    height, width = line.alpha.shape
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, board.shape[1]), min(top + height, board.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    alpha = line.alpha[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.uint16)
    if board.ndim == 3:
        alpha = alpha[..., None]
    region = board[y0:y1, x0:x1]
    mixed = region * (255 - alpha) + ink * alpha + 128
    region[...] = (mixed + (mixed >> 8)) >> 8


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
    space = glyph(" ", size).advance
    lines: list[str] = []
    pens: list[int] = []  # each line's advance, 1/64 px
    for piece in text.split(" "):
        length = word(piece, size).advance
        if lines and -(-(pens[-1] + space + length) // 64) + 2 * MARGIN <= width:
            lines[-1], pens[-1] = f"{lines[-1]} {piece}", pens[-1] + space + length
        else:
            lines.append(piece)
            pens.append(length)
    return lines


def caption_strip(text: str, width: int, top: int = 0) -> np.ndarray:
    """The rows a caption adds under a picture ``width`` px wide: ``text`` wrapped to that width (on one line, and
    the strip as wide as it, under a picture narrower than ``WRAP_MIN_WIDTH``), dark on mid-gray. ``top`` blank rows
    come first (the picture's place)."""
    lines = wrap(text, CAPTION_SIZE, width) if width >= WRAP_MIN_WIDTH else [text]
    strip_width = max(width, *(text_width(line, CAPTION_SIZE) for line in lines))
    step = line_height(CAPTION_SIZE) - 2 * MARGIN
    strip = np.full((top + line_height(CAPTION_SIZE) + step * (len(lines) - 1), strip_width), GAP, np.uint8)
    for row, line in enumerate(lines):
        draw_text(strip, (MARGIN, top + MARGIN + row * step), line, CAPTION_SIZE)
    return strip


def with_caption(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` under it: the picture keeps its place and pixels, the canvas grows by the caption's
    rows. The caption wraps to the picture's width; under a picture narrower than ``WRAP_MIN_WIDTH`` it stays on one
    line and the canvas grows to its width."""
    height, width = image.shape
    out = caption_strip(text, width, top=height)
    out[:height, :width] = image
    return out


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
