"""Projections of feature maps back to pixel space: the paper's method for conv1, a deconvnet for conv2 and pool."""

from fastapi import APIRouter
from fastapi.responses import Response

from service.api.deps import Digit, Filter, Format, GridScale, ModelDep, Scale
from service.api.error_responses import ERRORS
from service.api.render import PNG_RESPONSE, Labels, grid_png, json_response, map_png
from service.api.schemas import Projection
from service.api.uploads import IMAGE_BODY
from service.pictures.labels import caption
from service.studies.layers import check_filter, projection_of_digit

router = APIRouter(prefix="/v1/deconvolution", tags=["deconvolution"], responses=ERRORS)


@router.post(
    "/{layer}",
    responses=PNG_RESPONSE | {200: {"content": {"image/png": {}}, "description": "PNG grid"}},
    response_class=Response,
    openapi_extra=IMAGE_BODY,
    summary="A PNG grid of every filter's projection to pixel space (28x28 each, row-major)",
)
def deconvolution_grid(
    layer: str, digit: Digit, model: ModelDep, scale: GridScale = 2, labels: Labels = False
) -> Response:
    about = caption(f"{layer} deconvolutions of {model.name}", "the uploaded image", "each min-max scaled on its own")
    return grid_png(projection_of_digit(model, digit, layer), scale, about if labels else None, "projections")


@router.post(
    "/{layer}/{filter}",
    response_model=Projection,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="One filter's projection to pixel space: PNG (default, 28x28 x scale) or JSON raw floats",
)
def deconvolution(
    layer: str, filter: Filter, digit: Digit, model: ModelDep, format: Format = "png", scale: Scale = 8
) -> Response:
    check_filter(model, layer, filter)
    values = projection_of_digit(model, digit, layer, [filter])[0]
    if format == "png":
        return map_png(values, scale)
    return json_response(
        Projection(model=model.name, layer=layer, filter=filter, shape=list(values.shape), values=values.tolist())
    )
