"""Per-layer activations of one uploaded digit, as JSON or as PNG feature maps."""

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from service.api.deps import Digit, Filter, Format, GridScale, ModelDep, Scale
from service.api.error_responses import ERRORS
from service.api.render import PNG_RESPONSE, Labels, grid_png, json_response, map_png
from service.api.schemas import Activations, FeatureMap
from service.api.uploads import IMAGE_BODY
from service.pictures.labels import caption
from service.studies.layers import check_filter, layer_shape, spatial_layer

router = APIRouter(prefix="/v1/activations", tags=["activations"], responses=ERRORS)


@router.post(
    "/{layer}",
    response_model=Activations,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="Every activation of a layer; PNG: a grid of all its feature maps",
)
def layer_activations(
    layer: str, digit: Digit, model: ModelDep, format: Format = "json", scale: GridScale = 2, labels: Labels = False
) -> Response:
    shape = layer_shape(model, layer)
    values = model.run(digit, [layer])[layer][0]
    if format == "png" and values.ndim == 3:
        about = caption(f"{layer} of {model.name}", "the uploaded image", "each map min-max scaled on its own")
        return grid_png(np.moveaxis(values, -1, 0), scale, about if labels else None)
    if format == "png":
        about = caption(f"{layer} of {model.name}", "the uploaded image", f"all {values.size} units on one scale")
        return map_png(values[None, :], scale, about if labels else None)
    return json_response(Activations(model=model.name, layer=layer, shape=shape, values=values.tolist()))


@router.post(
    "/{layer}/{filter}",
    response_model=FeatureMap,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="One feature map of a layer (H x W); PNG: upscaled by `scale`",
)
def feature_map(
    layer: str, filter: Filter, digit: Digit, model: ModelDep, format: Format = "json", scale: Scale = 8
) -> Response:
    shape = spatial_layer(model, layer)
    check_filter(model, layer, filter)
    values = model.run(digit, [layer])[layer][0, ..., filter]
    if format == "png":
        return map_png(values, scale)
    return json_response(
        FeatureMap(model=model.name, layer=layer, filter=filter, shape=shape[:2], values=values.tolist())
    )
