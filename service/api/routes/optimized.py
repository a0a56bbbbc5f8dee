"""What each filter and each class wants to see: for the shipped classifiers, the 28x28 inputs that ``python -m
training analyze`` made by gradient ascent to excite one filter of conv1, conv2 or pool (its mean activation) or one
class (its logit); for an imported model (``?model=NAME``), the same computed on request in its own input size and
colour (``service.studies.optimized_any_model``), seeded, its cost checked before it runs."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from service.api.deps import (
    AnyModelDep,
    Filter,
    Format,
    GradientLimitsDep,
    GridScale,
    Scale,
    SettingsDep,
    loaded_statistics,
)
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import NotFound, Unprocessable
from service.api.render import PNG, PNG_RESPONSE, json_response, png_bytes, rgb_png_response
from service.api.schemas import ComputedOptimizedInput, OptimizedInput
from service.api.settings import Settings
from service.contract import CLASSES_KEY
from service.pictures.grids import tile, tile_colour, upscale_nearest
from service.pictures.labels import draw_indices, tile_origins
from service.pictures.legend import gray_bar, with_legend
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.imported_gradients import GradientLimits
from service.studies.layers import check_filter, spatial_layer
from service.studies.optimized_any_model import (
    DEFAULT_STEPS,
    METHOD,
    Ascent,
    Objective,
    ascend,
    checked_session,
    class_objective,
    filter_objective,
)
from service.studies.statistics import DatasetStatistics

router = APIRouter(prefix="/v1", tags=["optimized inputs"], responses=STATISTICS_ERRORS)

Digit = Annotated[int, Path(ge=0, description="the class: 0-9 for the shipped classifiers, any of an imported model's")]
SHIPPED_CLASSES = 10
Steps = Annotated[
    int,
    Query(
        description="imported models: gradient-ascent steps (at most `CONVLENS_MAX_OPTIMIZE_STEPS`); the shipped "
        "models' inputs were made at training time"
    ),
]
Seed = Annotated[int, Query(ge=0, description="imported models: the seed of the ascent's random start and jitter")]
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


def _computed(
    model: ImportedLoadedModel,
    settings: Settings,
    gradients: GradientLimits,
    objective: Objective,
    steps: int,
    seed: int,
) -> Ascent:
    """The ascent of ``objective`` once its steps and measured cost are within the settings."""
    session = checked_session(
        model, objective, steps, settings.max_optimize_steps, settings.max_optimize_seconds, gradients
    )
    return ascend(model, objective, session, steps, seed)


def _pictures(pixels: np.ndarray) -> np.ndarray:
    """Pixels (N, C, H, W) in [0, 1] as uint8 pictures: (N, H, W) grey or (N, H, W, 3) colour."""
    pictures = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return pictures[..., 0] if pictures.shape[-1] == 1 else pictures


def _computed_answer(
    model: ImportedLoadedModel,
    layer: str,
    index: int,
    ascent: Ascent,
    steps: int,
    seed: int,
    format: str,
    scale: int,
    labels: bool,
    what: str,
) -> Response:
    """One computed optimized input: its pixels upscaled (with ``labels``, the legend and ``what``), or JSON."""
    if format == "png":
        picture = upscale_nearest(_pictures(ascent.pixels)[0], scale)
        if labels:
            return rgb_png_response(with_legend(picture, gray_bar(), 0.0, 1.0, what), RANGE_HEADERS)
        if picture.ndim == 3:
            return rgb_png_response(picture, RANGE_HEADERS)
        return Response(png_bytes(picture), media_type=PNG, headers=RANGE_HEADERS)
    values = ascent.pixels[0]
    return json_response(
        ComputedOptimizedInput(
            model=model.name,
            layer=layer,
            index=index,
            shape=list(values.shape),
            values=values.tolist(),
            objective=float(ascent.objective[0]),
            start_objective=float(ascent.start_objective[0]),
            steps=steps,
            seed=seed,
            method=METHOD,
        )
    )


def _computed_grid(
    model: ImportedLoadedModel,
    layer: str,
    settings: Settings,
    gradients: GradientLimits,
    steps: int,
    seed: int,
    scale: int,
    labels: bool,
) -> Response:
    """Every filter of ``layer`` optimized in one ascent, as one mosaic of its pixels (0 black, 1 white)."""
    count = int(model.layer_shapes[layer][0]) if layer in model.layer_shapes else 0
    ascent = _computed(model, settings, gradients, filter_objective(model, layer, list(range(count))), steps, seed)
    pictures = _pictures(ascent.pixels)
    if pictures.ndim == 3:
        picture = upscale_nearest(tile(pictures, pad_value=128, normalize_each=False), scale)
    else:
        picture = upscale_nearest(tile_colour(pictures, scale_each=False), scale)
    if not labels:
        if picture.ndim == 3:
            return rgb_png_response(picture, RANGE_HEADERS)
        return Response(png_bytes(picture), media_type=PNG, headers=RANGE_HEADERS)
    columns = int(np.ceil(np.sqrt(count)))
    shape = (pictures.shape[1] * scale, pictures.shape[2] * scale)
    origins = tile_origins(count, columns, shape, scale)
    if picture.ndim == 3:
        picture = np.stack([draw_indices(picture[..., c], origins, shape) for c in range(3)], axis=2)
    else:
        picture = draw_indices(picture, origins, shape)
    text = f"{layer} of {model.name}: the input that excites each filter most ({steps} steps, seed {seed})"
    return rgb_png_response(with_legend(picture, gray_bar(), 0.0, 1.0, text), RANGE_HEADERS)


def _statistics(request: Request, model: LoadedModel) -> DatasetStatistics:
    """The shipped ``model``'s dataset statistics (its precomputed optimized inputs)."""
    return loaded_statistics(request, model.name)


@router.get(
    "/filters/{layer}/optimized",
    responses=PNG_RESPONSE | {200: {"content": {"image/png": {}}, "description": "PNG grid"}},
    response_class=Response,
    summary="A PNG grid of the optimized input of every filter of a layer (conv1, conv2 or pool of a shipped "
    "classifier; any layer of an imported model, computed on request), row-major, 1 px gray gaps, 0 black and 1 white",
)
def optimized_grid(
    layer: str,
    request: Request,
    model: AnyModelDep,
    settings: SettingsDep,
    gradients: GradientLimitsDep,
    scale: GridScale = 2,
    labels: GridLegend = False,
    steps: Steps = DEFAULT_STEPS,
    seed: Seed = 0,
) -> Response:
    if isinstance(model, ImportedLoadedModel):
        return _computed_grid(model, layer, settings, gradients, steps, seed, scale, labels)
    statistics = _statistics(request, model)
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
    response_model=OptimizedInput | ComputedOptimizedInput,
    responses=PNG_RESPONSE,
    summary="The input in [0, 1] that most excites one filter (its mean activation): PNG (default) or JSON; 28x28 "
    "for a shipped classifier, an imported model's input size and colour, computed on request",
)
def optimized_filter(
    layer: str,
    filter: Filter,
    request: Request,
    model: AnyModelDep,
    settings: SettingsDep,
    gradients: GradientLimitsDep,
    format: Format = "png",
    scale: Scale = 8,
    labels: Legend = True,
    steps: Steps = DEFAULT_STEPS,
    seed: Seed = 0,
) -> Response:
    what = f"{layer} filter {filter} of {model.name}: what it wants to see"
    if isinstance(model, ImportedLoadedModel):
        ascent = _computed(model, settings, gradients, filter_objective(model, layer, [filter]), steps, seed)
        return _computed_answer(model, layer, filter, ascent, steps, seed, format, scale, labels, what)
    statistics = _statistics(request, model)
    spatial_layer(model, layer)
    check_filter(model, layer, filter)
    pixels = _layer_inputs(statistics, layer)[filter]
    return _answer(model.name, layer, filter, pixels, format, scale, labels, what)


@router.get(
    "/classes/{digit}/optimized",
    response_model=OptimizedInput | ComputedOptimizedInput,
    responses=PNG_RESPONSE,
    summary="The input in [0, 1] that maximises one class's logit: PNG (default) or JSON; 28x28 for a shipped "
    "classifier, an imported model's input size and colour, computed on request",
)
def optimized_class(
    digit: Digit,
    request: Request,
    model: AnyModelDep,
    settings: SettingsDep,
    gradients: GradientLimitsDep,
    format: Format = "png",
    scale: Scale = 8,
    labels: Legend = True,
    steps: Steps = DEFAULT_STEPS,
    seed: Seed = 0,
) -> Response:
    if isinstance(model, ImportedLoadedModel):
        ascent = _computed(model, settings, gradients, class_objective(model, digit), steps, seed)
        label = model.manifest.labels[digit]
        what = f"class {digit} ({label}) of {model.name}: the input that maximises its logit"
        layer = model.manifest.logits or ""
        return _computed_answer(model, layer, digit, ascent, steps, seed, format, scale, labels, what)
    if digit >= SHIPPED_CLASSES:
        raise Unprocessable(f"class {digit} is out of range: the shipped classifiers' classes are 0-9")
    pixels = _statistics(request, model).optimized_inputs()[CLASSES_KEY][digit]
    what = f"class {digit} of {model.name}: the input that maximises its logit"
    return _answer(model.name, "output", digit, pixels, format, scale, labels, what)
