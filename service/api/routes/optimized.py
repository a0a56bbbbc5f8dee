"""What each filter and each class wants to see: the 28x28 inputs that ``python -m training analyze`` made by gradient
ascent to excite one filter of conv1, conv2 or pool (its mean activation) or one class (its logit)."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path
from fastapi.responses import Response

from service.api.deps import Filter, Format, GridScale, ModelDep, Scale, StatisticsDep
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import NotFound
from service.api.render import PNG, PNG_RESPONSE, json_response, png_bytes
from service.api.schemas import OptimizedInput
from service.contract import CLASSES_KEY
from service.pictures.grids import tile, upscale_nearest
from service.studies.layers import check_filter, spatial_layer
from service.studies.statistics import DatasetStatistics

router = APIRouter(prefix="/v1", tags=["optimized inputs"], responses=STATISTICS_ERRORS)

Digit = Annotated[int, Path(ge=0, le=9, description="the class 0-9")]


def _layer_inputs(statistics: DatasetStatistics, layer: str) -> np.ndarray:
    """The optimized inputs of ``layer`` (uint8, N x 28 x 28); 404 for a layer without any."""
    inputs = statistics.optimized_inputs()
    if layer not in inputs or layer == CLASSES_KEY:
        layers = ", ".join(name for name in inputs if name != CLASSES_KEY)
        raise NotFound(f"no optimized inputs for layer {layer!r}; layers: {layers}")
    return inputs[layer]


def _answer(model: str, layer: str, index: int, pixels: np.ndarray, format: str, scale: int) -> Response:
    """One optimized input (uint8): its pixels as they are, upscaled, or JSON ``values`` in [0, 1]."""
    if format == "png":
        return Response(png_bytes(upscale_nearest(pixels, scale)), media_type=PNG)
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
def optimized_grid(layer: str, statistics: StatisticsDep, model: ModelDep, scale: GridScale = 2) -> Response:
    spatial_layer(model, layer)
    mosaic = tile(_layer_inputs(statistics, layer), pad_value=128, normalize_each=False)
    return Response(png_bytes(upscale_nearest(mosaic, scale)), media_type=PNG)


@router.get(
    "/filters/{layer}/{filter}/optimized",
    response_model=OptimizedInput,
    responses=PNG_RESPONSE,
    summary="The 28x28 input in [0, 1] that most excites one filter (its mean activation): PNG (default) or JSON",
)
def optimized_filter(
    layer: str, filter: Filter, statistics: StatisticsDep, model: ModelDep, format: Format = "png", scale: Scale = 8
) -> Response:
    spatial_layer(model, layer)
    check_filter(model, layer, filter)
    return _answer(model.name, layer, filter, _layer_inputs(statistics, layer)[filter], format, scale)


@router.get(
    "/classes/{digit}/optimized",
    response_model=OptimizedInput,
    responses=PNG_RESPONSE,
    summary="The 28x28 input in [0, 1] that maximises one class's logit: PNG (default) or JSON",
)
def optimized_class(
    digit: Digit, statistics: StatisticsDep, model: ModelDep, format: Format = "png", scale: Scale = 8
) -> Response:
    return _answer(model.name, "output", digit, statistics.optimized_inputs()[CLASSES_KEY][digit], format, scale)
