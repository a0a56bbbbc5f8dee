"""What each filter and each class wants to see: the 28x28 inputs that ``python -m training analyze`` made by gradient
ascent to excite one filter of conv1, conv2 or pool (its mean activation) or one class (its logit)."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from service.api.deps import Filter, Format, GridScale, ModelDep, Scale, StatisticsDep
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import NotFound
from service.api.render import PNG, PNG_RESPONSE, json_response, png_bytes, rgb_png_response
from service.api.schemas import OptimizedInput
from service.contract import CLASSES_KEY
from service.pictures.grids import tile, upscale_nearest
from service.pictures.labels import draw_indices, tile_origins
from service.pictures.legend import gray_bar, with_legend
from service.studies.layers import check_filter, spatial_layer
from service.studies.statistics import DatasetStatistics

router = APIRouter(prefix="/v1", tags=["optimized inputs"], responses=STATISTICS_ERRORS)

Digit = Annotated[int, Path(ge=0, le=9, description="the class 0-9")]
LEGEND_TEXT = (
    "PNG only: a gray bar under the picture from 0 (black) to 1 (white), the input's range, and a one-line caption"
)
Legend = Annotated[bool, Query(description=f"{LEGEND_TEXT}; on by default")]
GridLegend = Annotated[bool, Query(description=f"{LEGEND_TEXT}, with each tile's filter index; off by default")]
RANGE_HEADERS = {"X-Colormap": "gray", "X-Colormap-Range": "0,1"}


def _layer_inputs(statistics: DatasetStatistics, layer: str) -> np.ndarray:
    """The optimized inputs of ``layer`` (uint8, N x 28 x 28); 404 for a layer without any."""
    inputs = statistics.optimized_inputs()
    if layer not in inputs or layer == CLASSES_KEY:
        layers = ", ".join(name for name in inputs if name != CLASSES_KEY)
        raise NotFound(f"no optimized inputs for layer {layer!r}; layers: {layers}")
    return inputs[layer]


def _answer(
    model: str, layer: str, index: int, pixels: np.ndarray, format: str, scale: int, labels: bool, what: str
) -> Response:
    """One optimized input (uint8): its pixels as they are, upscaled (with ``labels``, its legend and the caption
    ``what``), or JSON ``values`` in [0, 1]."""
    if format == "png":
        picture = upscale_nearest(pixels, scale)
        if labels:
            return rgb_png_response(with_legend(picture, gray_bar(), 0.0, 1.0, what), RANGE_HEADERS)
        return Response(png_bytes(picture), media_type=PNG, headers=RANGE_HEADERS)
    values = pixels.astype(np.float32) / 255.0
    return json_response(
        OptimizedInput(model=model, layer=layer, index=index, shape=list(values.shape), values=values.tolist())
    )


@router.get(
    "/filters/{layer}/optimized",
    responses=PNG_RESPONSE | {200: {"content": {"image/png": {}}, "description": "PNG grid"}},
    response_class=Response,
    summary="A PNG grid of the optimized input of every filter of conv1, conv2 or pool (row-major, 1 px gray gaps, "
    "0 black and 1 white)",
)
def optimized_grid(
    layer: str, statistics: StatisticsDep, model: ModelDep, scale: GridScale = 2, labels: GridLegend = False
) -> Response:
    spatial_layer(model, layer)
    inputs = _layer_inputs(statistics, layer)
    picture = upscale_nearest(tile(inputs, pad_value=128, normalize_each=False), scale)
    if not labels:
        return Response(png_bytes(picture), media_type=PNG, headers=RANGE_HEADERS)
    count, height, width = inputs.shape
    columns = int(np.ceil(np.sqrt(count)))
    shape = (height * scale, width * scale)
    picture = draw_indices(picture, tile_origins(count, columns, shape, scale), shape)
    text = f"{layer} of {model.name}: the input that excites each filter most"
    return rgb_png_response(with_legend(picture, gray_bar(), 0.0, 1.0, text), RANGE_HEADERS)


@router.get(
    "/filters/{layer}/{filter}/optimized",
    response_model=OptimizedInput,
    responses=PNG_RESPONSE,
    summary="The 28x28 input in [0, 1] that most excites one filter (its mean activation): PNG (default) or JSON",
)
def optimized_filter(
    layer: str,
    filter: Filter,
    statistics: StatisticsDep,
    model: ModelDep,
    format: Format = "png",
    scale: Scale = 8,
    labels: Legend = True,
) -> Response:
    spatial_layer(model, layer)
    check_filter(model, layer, filter)
    pixels = _layer_inputs(statistics, layer)[filter]
    what = f"{layer} filter {filter} of {model.name}: what it wants to see"
    return _answer(model.name, layer, filter, pixels, format, scale, labels, what)


@router.get(
    "/classes/{digit}/optimized",
    response_model=OptimizedInput,
    responses=PNG_RESPONSE,
    summary="The 28x28 input in [0, 1] that maximises one class's logit: PNG (default) or JSON",
)
def optimized_class(
    digit: Digit,
    statistics: StatisticsDep,
    model: ModelDep,
    format: Format = "png",
    scale: Scale = 8,
    labels: Legend = True,
) -> Response:
    pixels = statistics.optimized_inputs()[CLASSES_KEY][digit]
    what = f"class {digit} of {model.name}: the input that maximises its logit"
    return _answer(model.name, "output", digit, pixels, format, scale, labels, what)
