"""Responses: arrays as PNG (single maps, mosaics and labelled rows, min-max scaled to gray, upscaled crisp) and
models as JSON."""

from __future__ import annotations

import io

import numpy as np
from fastapi.responses import Response
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel

from service.cancellation import checkpoint
from service.featuremaps.grids import tile, to_uint8, upscale_nearest

PNG = "image/png"
PNG_RESPONSE = {
    200: {
        "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON by default; a PNG with `format=png`",
    }
}


def json_response(model: BaseModel) -> Response:
    """A response model serialised by pydantic-core straight to bytes.

    Returning a Response from a sync route also spares FastAPI's serialisation step, which it would otherwise
    run in the thread pool: one thread hop fewer per request, and large float arrays encode several times
    faster than through the standard json module.
    """
    return Response(model.model_dump_json(), media_type="application/json")


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG (fast compression: these are small, short-lived images)."""
    checkpoint()
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def map_png(values: np.ndarray, scale: int) -> Response:
    """One 2-D map, min-max scaled to 0..255 and upscaled by ``scale``, as a PNG response."""
    return Response(png_bytes(upscale_nearest(to_uint8(values), scale)), media_type=PNG)


def grid_png(maps: np.ndarray, scale: int) -> Response:
    """A stack (C, H, W) as one mosaic (1 px gaps, ceil(sqrt(C)) columns, each map scaled on its own,
    row-major in filter order), the whole upscaled by ``scale``, as a PNG response."""
    return Response(png_bytes(upscale_nearest(tile(maps), scale)), media_type=PNG)


LABEL_GAP = 4
LABEL_HEIGHT = 16
LABEL_BACKGROUND = 128


def labelled_row_png(maps: np.ndarray, labels: list[str], scale: int) -> Response:
    """Maps (N, H, W) side by side, each min-max scaled on its own and upscaled by ``scale``, with its label
    centred under it (Pillow's default font) on mid-gray, ``LABEL_GAP`` px apart, as a PNG response.

    Each column is as wide as its tile, or its label when that is wider.
    """
    font = ImageFont.load_default()
    tiles = [upscale_nearest(to_uint8(values), scale) for values in maps]
    text_widths = [int(np.ceil(font.getlength(label))) + 2 for label in labels]
    widths = [max(t.shape[1], w) for t, w in zip(tiles, text_widths)]
    height = max(t.shape[0] for t in tiles)
    canvas = Image.new("L", (sum(widths) + LABEL_GAP * (len(tiles) - 1), height + LABEL_HEIGHT), LABEL_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    left = 0
    for pixels, label, width, text_width in zip(tiles, labels, widths, text_widths):
        canvas.paste(Image.fromarray(pixels, mode="L"), (left + (width - pixels.shape[1]) // 2, 0))
        draw.text((left + (width - text_width) // 2 + 1, height + 2), label, fill=255, font=font)
        left += width + LABEL_GAP
    return Response(png_bytes(np.asarray(canvas)), media_type=PNG)
