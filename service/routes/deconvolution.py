"""Projections of feature maps back to pixel space: the paper's method for conv1, a deconvnet for conv2 and pool."""

from fastapi import APIRouter
from fastapi.responses import Response

from service.deps import Digit, Filter, Format, GridScale, ModelDep, Scale, check_filter, layer_shape
from service.errors import Unprocessable
from service.featuremaps.deconv import PROJECTABLE_LAYERS, PROJECTION_INPUTS, project
from service.registry import LoadedModel
from service.render import PNG_RESPONSE, grid_png, json_response, map_png
from service.routes.common import ERRORS
from service.schemas import Projection
from service.uploads import IMAGE_BODY

router = APIRouter(prefix="/v1/deconvolution", tags=["deconvolution"], responses=ERRORS)


def digit_projections(model: LoadedModel, layer: str, digit, filters: list[int] | None):
    """The digit's projections of ``filters`` (all when None) of ``layer`` to pixel space, (F, 28, 28);
    404/422 for a layer or model that has none."""
    layer_shape(model, layer)
    if layer not in PROJECTABLE_LAYERS or not {"conv1", "conv2"} <= set(model.kernels):
        raise Unprocessable(f"deconvolution is defined for the classifier's {', '.join(PROJECTABLE_LAYERS)}; "
                            f"use a classifier (model=classifier or a variant) with one of those layers")
    activations = {name: maps[0] for name, maps in model.run(digit, PROJECTION_INPUTS[layer]).items()}
    return project(layer, activations, model.kernels["conv1"], model.kernels["conv2"], filters)


@router.post("/{layer}", responses=PNG_RESPONSE | {200: {"content": {"image/png": {}}, "description": "PNG grid"}},
             response_class=Response, openapi_extra=IMAGE_BODY,
             summary="A PNG grid of every filter's projection to pixel space (28x28 each, row-major)")
def deconvolution_grid(layer: str, digit: Digit, model: ModelDep, scale: GridScale = 2) -> Response:
    return grid_png(digit_projections(model, layer, digit, None), scale)


@router.post("/{layer}/{filter}", response_model=Projection, responses=PNG_RESPONSE, openapi_extra=IMAGE_BODY,
             summary="One filter's projection to pixel space: PNG (default, 28x28 x scale) or JSON raw floats")
def deconvolution(layer: str, filter: Filter, digit: Digit, model: ModelDep, format: Format = "png",
                  scale: Scale = 8) -> Response:
    check_filter(model, layer, filter)
    values = digit_projections(model, layer, digit, [filter])[0]
    if format == "png":
        return map_png(values, scale)
    return json_response(Projection(model=model.name, layer=layer, filter=filter, shape=list(values.shape), values=values.tolist()))
