"""Per-layer activations of one uploaded image, as JSON or as PNG feature maps, for a shipped or an imported
model (an imported model's values keep its own layout: C x H x W for its feature maps).

A PNG grid of a layer with more than GRID_MAPS maps shows its GRID_MAPS most active ones (largest L2 norm first),
``?top=`` says how many; the channels a grid shows, in its order, are in its ``X-Channels`` header."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.api.deps import AnyModelDep, Digit, Filter, Format, GridScale, Scale
from service.api.error_responses import ERRORS
from service.api.render import PNG_RESPONSE, Labels, grid_png, json_response, map_png
from service.api.schemas import Activations, FeatureMap
from service.api.uploads import IMAGE_BODY
from service.featuremaps.norms import GRID_MAPS, shown_channels
from service.pictures.labels import caption
from service.studies.layers import channels_last, check_filter, layer_shape, spatial_layer

router = APIRouter(prefix="/v1/activations", tags=["activations"], responses=ERRORS)
CHANNELS_HEADER = "X-Channels"
GridTop = Annotated[
    int | None,
    Query(
        description=f"PNG grid: only the `top` most active maps (largest L2 norm), most active first; by default "
        f"every map in channel order up to {GRID_MAPS}, and the {GRID_MAPS} most active of a larger layer. The "
        f"`{CHANNELS_HEADER}` header lists the channels shown, in order"
    ),
]


@router.post(
    "/{layer}",
    response_model=Activations,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="Every activation of a layer; PNG: a grid of its feature maps (the most active first past 64)",
)
def layer_activations(
    layer: str,
    digit: Digit,
    model: AnyModelDep,
    format: Format = "json",
    scale: GridScale = 2,
    labels: Labels = False,
    top: GridTop = None,
) -> Response:
    shape = layer_shape(model, layer)
    values = model.run(digit, [layer])[layer][0]
    if format == "png" and values.ndim == 3:
        maps = channels_last(model, values)
        channels = shown_channels(maps, top)
        shown = "each map min-max scaled on its own"
        if channels is not None:
            maps = maps[..., channels]
            shown = f"the {len(channels)} most active of {values.shape[0]} maps, most active first; {shown}"
        about = caption(f"{layer} of {model.name}", "the uploaded image", shown)
        response = grid_png(np.moveaxis(maps, -1, 0), scale, about if labels else None)
        if channels is not None:
            response.headers[CHANNELS_HEADER] = ",".join(map(str, channels))
        return response
    if format == "png":
        about = caption(f"{layer} of {model.name}", "the uploaded image", f"all {values.size} units on one scale")
        return map_png(values.reshape(1, -1), scale, about if labels else None)
    return json_response(Activations(model=model.name, layer=layer, shape=shape, values=values.tolist()))


@router.post(
    "/{layer}/{filter}",
    response_model=FeatureMap,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="One feature map of a layer (H x W); PNG: upscaled by `scale`",
)
def feature_map(
    layer: str, filter: Filter, digit: Digit, model: AnyModelDep, format: Format = "json", scale: Scale = 8
) -> Response:
    spatial_layer(model, layer)
    check_filter(model, layer, filter)
    values = channels_last(model, model.run(digit, [layer])[layer][0])[..., filter]
    if format == "png":
        return map_png(values, scale)
    return json_response(
        FeatureMap(model=model.name, layer=layer, filter=filter, shape=list(values.shape), values=values.tolist())
    )
