"""One filter of a classifier (``?model=``, default the shipped one; an imported model with its analysis) beyond a
single upload: the images of the analysed dataset that excite it most (with their deconvolution projections for the
shipped classifiers), and conv1's kernels."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.api.deps import AnyModelDep, AnyStatisticsDep, Filter, Format, ModelDep, scale_param
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import Unprocessable
from service.api.render import PNG_RESPONSE, Labels, grid_png, top_images_png
from service.api.schemas import ConvWeights, TopImages
from service.pictures.labels import caption
from service.runtime.imported import ImportedLoadedModel
from service.studies.layers import check_filter, filter_projections

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


@router.get(
    "/{layer}/{filter}/top-images",
    response_model=TopImages,
    responses=PNG_RESPONSE,
    summary="The 9 test images with the strongest activation of a filter; PNG: them (left, 3x3, strongest "
    "first) beside their deconvolution projections of that filter (right)",
)
def top_images(
    layer: str,
    filter: Filter,
    statistics: AnyStatisticsDep,
    model: AnyModelDep,
    format: Format = "json",
    scale: PanelScale = 4,
    labels: Labels = True,
) -> TopImages | Response:
    statistics.check_layer(layer)
    check_filter(model, layer, filter)
    rows, images = statistics.top_images(layer, filter)
    if format == "png" and isinstance(model, ImportedLoadedModel):
        about = caption(
            f"{layer} filter {filter} of {model.name}",
            f"the {len(rows)} {statistics.data.split} images with the largest {statistics.data.norm.upper()} norm, "
            "strongest first",
            "colour images shown in grey (their channels averaged)" if images.ndim == 4 else "",
        )
        pictures = images.mean(axis=-1) if images.ndim == 4 else images
        return grid_png(pictures.astype(np.float32), scale, about if labels else None, "images")
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
