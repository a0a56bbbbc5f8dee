"""Projections of feature maps back to pixel space: the paper's method for conv1, a deconvnet for conv2 and pool of
the shipped classifiers; for an imported model (``?model=NAME``), the deconvnet of any filter of any layer through
the gradient builder's rules (``service.studies.imported_deconvolution``), in the model's input size and colour."""

import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Header
from fastapi.responses import Response

from service.api.deps import AnyModelDep, Digit, Filter, Format, GradientLimitsDep, GridScale, Scale
from service.api.error_responses import ERRORS
from service.api.render import (
    NPY,
    PNG_RESPONSE,
    Labels,
    grid_png,
    json_response,
    map_png,
    npy_response,
    rgb_png_response,
    wants_npy,
)
from service.api.schemas import Projection
from service.api.uploads import IMAGE_BODY
from service.featuremaps.norms import shown_channels
from service.pictures.grids import tile_colour, to_uint8, upscale_nearest
from service.pictures.labels import caption, draw_indices, tile_origins, with_caption
from service.runtime.imported import ImportedLoadedModel
from service.studies.imported_deconvolution import layer_activation, project
from service.studies.imported_gradients import GradientLimits
from service.studies.layers import channels_last, check_filter, projection_of_digit

router = APIRouter(prefix="/v1/deconvolution", tags=["deconvolution"], responses=ERRORS)
CHANNELS_HEADER = "X-Channels"
NPY_ANSWER = {
    200: {
        "content": {NPY: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON, or with `Accept: application/x-npy` a .npy float32 array of the raw projection",
    }
}


@router.post(
    "/{layer}",
    responses=PNG_RESPONSE | {200: {"content": {"image/png": {}}, "description": "PNG grid"}},
    response_class=Response,
    openapi_extra=IMAGE_BODY,
    summary="A PNG grid of every filter's projection to pixel space (row-major; an imported model's in its input "
    "size and colour, its 64 most active filters past 64, listed in `X-Channels`)",
)
def deconvolution_grid(
    layer: str,
    digit: Digit,
    model: AnyModelDep,
    gradients: GradientLimitsDep,
    scale: GridScale = 2,
    labels: Labels = False,
) -> Response:
    about = caption(f"{layer} deconvolutions of {model.name}", "the uploaded image", "each min-max scaled on its own")
    if isinstance(model, ImportedLoadedModel):
        return _imported_grid(model, digit, layer, gradients, scale, about if labels else None)
    return grid_png(projection_of_digit(model, digit, layer), scale, about if labels else None, "projections")


@router.post(
    "/{layer}/{filter}",
    response_model=Projection,
    responses=PNG_RESPONSE | NPY_ANSWER,
    openapi_extra=IMAGE_BODY,
    summary="One filter's projection to pixel space: PNG (default, the input's size x scale), JSON raw floats, or "
    "a .npy with `Accept: application/x-npy`",
)
def deconvolution(
    layer: str,
    filter: Filter,
    digit: Digit,
    model: AnyModelDep,
    gradients: GradientLimitsDep,
    format: Format = "png",
    scale: Scale = 8,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if isinstance(model, ImportedLoadedModel):
        values = project(model, digit, layer, [filter], layer_activation(model, digit, layer), gradients)[0]
        picture = _channels_last_picture(model, values)
    else:
        check_filter(model, layer, filter)
        values = picture = projection_of_digit(model, digit, layer, [filter])[0]
    if wants_npy(accept):
        return npy_response(values)
    if format == "png":
        if picture.ndim == 2:
            return map_png(picture, scale)
        return rgb_png_response(upscale_nearest(to_uint8(picture), scale))
    return json_response(
        Projection(model=model.name, layer=layer, filter=filter, shape=list(values.shape), values=values.tolist())
    )


def _channels_last_picture(model: ImportedLoadedModel, values: np.ndarray) -> np.ndarray:
    """One projection in ``model``'s input layout as a picture: (H, W) for a grey input, (H, W, 3) for colour."""
    hwc = values.transpose(1, 2, 0) if model.manifest.input.layout == "nchw" else values
    return hwc[..., 0] if hwc.shape[-1] == 1 else hwc


def _imported_grid(
    model: ImportedLoadedModel, image: np.ndarray, layer: str, gradients: GradientLimits, scale: int, about: str | None
) -> Response:
    """The projections of ``layer``'s filters (its most active ones past 64, in ``X-Channels``) as one mosaic."""
    activation = layer_activation(model, image, layer)
    maps = channels_last(model, activation) if activation.ndim == 3 else activation[None, None]
    channels = shown_channels(maps, None)
    filters = list(range(activation.shape[0])) if channels is None else channels
    pictures = np.stack(
        [_channels_last_picture(model, p) for p in project(model, image, layer, filters, activation, gradients)]
    )
    if pictures.ndim == 3:
        response = grid_png(pictures, scale, about, "projections")
    else:
        mosaic = upscale_nearest(tile_colour(pictures), scale)
        if about is not None:
            columns = math.ceil(math.sqrt(len(pictures)))
            shape = (pictures.shape[1] * scale, pictures.shape[2] * scale)
            origins = tile_origins(len(pictures), columns, shape, scale)
            mosaic = np.stack([with_caption(draw_indices(mosaic[..., c], origins, shape), about) for c in range(3)], 2)
        response = rgb_png_response(mosaic)
    if channels is not None:
        response.headers[CHANNELS_HEADER] = ",".join(map(str, channels))
    return response
