"""One filter of a classifier (``?model=``, default the shipped one; an imported model with its analysis) beyond a
single upload: the images of the analysed dataset that excite it most, with their deconvolution projections of the
filter (an imported model's through the gradient builder's deconvnet rules, when its layer has them), and conv1's
kernels."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response

from service.api.deps import AnyModelDep, AnyStatisticsDep, Filter, Format, GradientLimitsDep, ModelDep, scale_param
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import Unprocessable
from service.api.render import NPY, PNG_RESPONSE, Labels, grid_png, npy_response, top_images_png, wants_npy
from service.api.schemas import ConvWeights, TopImages
from service.pictures.labels import caption
from service.runtime.imported import ImportedLoadedModel
from service.studies.imported_deconvolution import as_grey, top_image_projections
from service.studies.imported_gradients import GradientLimits, NoGradients
from service.studies.layers import check_filter, filter_projections
from service.studies.statistics import DatasetStatistics

router = APIRouter(prefix="/v1/filters", tags=["filters"], responses=STATISTICS_ERRORS)

PanelScale = Annotated[int, Depends(scale_param(4))]
KernelScale = Annotated[int, Depends(scale_param(16))]


@router.get(
    "/conv1/weights",
    response_model=ConvWeights,
    responses=PNG_RESPONSE,
    summary="conv1's 32 3x3 kernels; PNG: a grid of them (each min-max scaled, gray gaps), upscaled by `scale`",
)
def conv1_weights(
    model: ModelDep, format: Format = "json", scale: KernelScale = 16, labels: Labels = True
) -> ConvWeights | Response:
    if "conv1" not in model.kernels:
        raise Unprocessable(f"model {model.name!r} has no conv1 kernels")
    kernels = np.moveaxis(model.kernels["conv1"][:, :, 0, :], -1, 0)
    if format == "png":
        about = caption(f"conv1 kernels of {model.name}", "the trained weights", "each min-max scaled on its own")
        return grid_png(kernels, scale, about if labels else None, "kernels")
    return ConvWeights(model=model.name, layer="conv1", shape=list(kernels.shape), kernels=kernels.tolist())


PROJECTIONS_HEADER = "X-Projections"
TOP_IMAGES_ANSWER = {
    200: {
        "content": {NPY: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON; PNG; or with `Accept: application/x-npy` a .npy float32 array of the projections "
        "(9, the model's input shape: 9 x 28 x 28 for a shipped classifier)",
    }
}


@router.get(
    "/{layer}/{filter}/top-images",
    response_model=TopImages,
    responses=PNG_RESPONSE | TOP_IMAGES_ANSWER,
    summary="The 9 test images with the strongest activation of a filter; PNG: them (left, 3x3, strongest "
    "first) beside their deconvolution projections of that filter (right; an imported model without a backward "
    "rule on the layer's path: the images alone, `X-Projections` saying why); .npy: the projections",
)
def top_images(
    layer: str,
    filter: Filter,
    statistics: AnyStatisticsDep,
    model: AnyModelDep,
    gradients: GradientLimitsDep,
    format: Format = "json",
    scale: PanelScale = 4,
    labels: Labels = True,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TopImages | Response:
    statistics.check_layer(layer)
    check_filter(model, layer, filter)
    rows, images = statistics.top_images(layer, filter)
    imported = isinstance(model, ImportedLoadedModel)
    if wants_npy(accept):
        if imported:
            return npy_response(top_image_projections(model, images, layer, filter, gradients))
        return npy_response(filter_projections(model, images, layer, filter))
    if format == "png" and imported:
        return _imported_top_images(model, statistics, layer, filter, rows, images, gradients, scale, labels)
    if format == "png":
        texts = [f"{row['label']} · {row['norm']:.2f}" for row in rows] if labels else None
        about = caption(
            f"{layer} filter {filter} of {model.name}",
            f"the 9 {statistics.data.split} images with the largest {statistics.data.norm.upper()} norm, strongest "
            "first (label · norm)",
            "right: their deconvolutions",
        )
        return top_images_png(images, filter_projections(model, images, layer, filter), scale, texts, about)
    return TopImages(layer=layer, filter=filter, split=statistics.data.split, norm=statistics.data.norm, images=rows)


def _imported_top_images(
    model: ImportedLoadedModel,
    statistics: DatasetStatistics,
    layer: str,
    filter: int,
    rows: list[dict],
    images: np.ndarray,
    gradients: GradientLimits,
    scale: int,
    labels: bool,
) -> Response:
    """An imported model's top images beside their deconvnet projections (colour ones both shown in grey); the
    images alone when the layer's path to the input holds an op without a backward rule (``X-Projections``: why)."""
    colour = images.ndim == 4
    pictures = (images.mean(axis=-1) if colour else images).astype(np.float32)
    ranked = f"the {len(rows)} {statistics.data.split} images with the largest {statistics.data.norm.upper()} norm"
    try:
        projections = as_grey(model, top_image_projections(model, images, layer, filter, gradients))
    except NoGradients as why:
        about = caption(
            f"{layer} filter {filter} of {model.name}",
            f"{ranked}, strongest first",
            "colour images shown in grey (their channels averaged)" if colour else "",
        )
        response = grid_png(pictures, scale, about if labels else None, "images")
        response.headers[PROJECTIONS_HEADER] = f"none: {why}"
        return response
    texts = [f"{row['label']} · {row['norm']:.2f}" for row in rows] if labels else None
    about = caption(
        f"{layer} filter {filter} of {model.name}",
        f"{ranked}, strongest first (label · norm)",
        "right: their deconvolutions" + (" (colour shown in grey)" if colour else ""),
    )
    response = top_images_png(pictures, projections, scale, texts, about)
    response.headers[PROJECTIONS_HEADER] = "deconvnet"
    return response
