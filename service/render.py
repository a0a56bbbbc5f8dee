"""Responses: arrays as PNG (single maps and mosaics, min-max scaled to gray, upscaled crisp) and models as JSON."""

from __future__ import annotations

import io

import numpy as np
from fastapi.responses import Response
from PIL import Image
from pydantic import BaseModel

from service.featuremaps.grids import tile, to_uint8, upscale_nearest

PNG = "image/png"
PNG_RESPONSE = {200: {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
                      "description": "JSON by default; a PNG with `format=png`"}}


def json_response(model: BaseModel) -> Response:
    """A response model serialised by pydantic-core straight to bytes.

    Returning a Response from a sync route also spares FastAPI's serialisation step, which it would otherwise
    run in the thread pool: one thread hop fewer per request, and large float arrays encode several times
    faster than through the standard json module.
    """
    return Response(model.model_dump_json(), media_type="application/json")


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG (fast compression: these are small, short-lived images)."""
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
