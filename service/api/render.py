"""Responses: arrays as PNG (single maps, mosaics and labelled rows, min-max scaled to gray, upscaled crisp; the
drawing itself is the core's, ``featuremaps.grids`` and ``featuremaps.labels``) and models as JSON."""

from __future__ import annotations

import io
from typing import Annotated

import numpy as np
import pydantic_core
from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel

from service.pictures.grids import side_by_side, tile, to_uint8, upscale_nearest
from service.pictures.labels import labelled_grid, labelled_row, labelled_top_images, with_caption
from service.pictures.png import png_bytes as encode_png
from service.runtime.cancellation import checkpoint

PNG = "image/png"
Labels = Annotated[
    bool,
    Query(
        description="PNG only: draw each tile's filter index (top images: label and norm under each image) and a "
        "one-line caption under the picture: the layer, the image, the rule; a grid's tiles stay where they are"
    ),
]
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


def document_response(document: dict) -> Response:
    """A document the code built itself from plain values, serialised by pydantic-core as ``json_response`` would
    serialise the route's response model (the same bytes), without building and validating that model first: for
    large documents, where the models cost more than the JSON (1,000 batch results: 1.3 against 4.1 ms)."""
    return Response(pydantic_core.to_json(document), media_type="application/json")


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG (``service.pictures.png``: fast, for short-lived pictures)."""
    checkpoint()
    return encode_png(pixels)


def png_response(pixels: np.ndarray) -> Response:
    """A 2-D uint8 array as a PNG response."""
    return Response(png_bytes(pixels), media_type=PNG)


def map_png(values: np.ndarray, scale: int, caption: str | None = None) -> Response:
    """One 2-D map, min-max scaled to 0..255 and upscaled by ``scale``, as a PNG response; with ``caption``, that
    line under it."""
    pixels = upscale_nearest(to_uint8(values), scale)
    return png_response(pixels if caption is None else with_caption(pixels, caption))


def grid_png(maps: np.ndarray, scale: int, caption: str | None = None, noun: str = "maps") -> Response:
    """A stack (C, H, W) as one mosaic (gaps of mid-gray, ceil(sqrt(C)) columns, each map scaled on its own,
    row-major in filter order), the whole upscaled by ``scale``, as a PNG response. With ``caption``
    (``labels=true``): each tile's filter index, and the caption under the grid, with how many ``noun`` are zero
    everywhere."""
    if caption is None:
        return png_response(upscale_nearest(tile(maps), scale))
    return png_response(labelled_grid(maps, scale, caption, noun))


def top_images_png(
    images: np.ndarray, projections: np.ndarray, scale: int, texts: list[str] | None, caption: str
) -> Response:
    """A filter's top images (3x3, strongest first) beside their projections, upscaled by ``scale``; with ``texts``
    (``labels=true``), ``texts[k]`` under image k and the caption under the whole."""
    if texts is None:
        return png_response(upscale_nearest(side_by_side(images, projections), scale))
    return png_response(labelled_top_images(images, projections, texts, scale, caption))


def labelled_row_png(maps: list[np.ndarray], names: list[str], scale: int) -> Response:
    """Maps side by side, each named under it (``labels.labelled_row``), as a PNG response."""
    return png_response(labelled_row(maps, names, scale))


NPY = "application/x-npy"


def wants_npy(accept: str | None) -> bool:
    """Whether the request's ``Accept`` asks for a NumPy ``.npy`` answer."""
    return NPY in (accept or "").lower()


def npy_response(array: np.ndarray, headers: dict[str, str] | None = None) -> Response:
    """An array as a ``.npy`` file (``np.load`` reads it back exactly)."""
    checkpoint()
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return Response(buffer.getvalue(), media_type=NPY, headers=headers)


def rgb_png_response(pixels: np.ndarray, headers: dict[str, str] | None = None) -> Response:
    """An (H, W, 3) uint8 array as an RGB PNG response."""
    checkpoint()
    return Response(encode_png(pixels), media_type=PNG, headers=headers)
