"""How a classifier's filters changed while it trained (Zeiler and Fergus, figure 4): at each recorded epoch, the
image of a fixed test subset that excites a filter most, and that image's projection of the filter with that epoch's
weights (``python -m training train`` records them beside the classifier)."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from service.api.deps import Filter, Format, ModelDep, scale_param
from service.api.error_responses import EVOLUTION_ERRORS
from service.api.errors import ApiError, NotFound
from service.api.render import PNG_RESPONSE, json_response, labelled_row_png
from service.api.schemas import EvolutionEpoch, FilterEvolution
from service.pictures.grids import to_uint8
from service.runtime.registry import LoadedModel
from service.studies.evolution import EvolutionUnavailable, FeatureEvolution
from service.studies.layers import check_filter

router = APIRouter(prefix="/v1/filters", tags=["filters"], responses=EVOLUTION_ERRORS)

TileScale = Annotated[int, Depends(scale_param(4))]
ShowInput = Annotated[bool, Query(alias="input", description="show each epoch's image left of its projection")]
GAP = 2


def recording(request: Request, model: LoadedModel) -> FeatureEvolution:
    """The verified recording of ``model``: 404 for a model without one, 503 with the reason when it is listed
    but could not be loaded."""
    loaded = getattr(request.app.state, "evolution", None)
    if loaded is None:
        raise ApiError("models are not loaded yet; retry shortly", status=503, headers={"Retry-After": "1"})
    found = loaded.get(model.name)
    if found is None:
        raise NotFound(
            f"model {model.name!r} has no recorded feature evolution (recorded: {', '.join(loaded) or 'none'}); "
            "`python -m training train --only classifier` records the shipped classifier's"
        )
    if isinstance(found, EvolutionUnavailable):
        raise ApiError(str(found), status=503)
    return found


def strip(images: np.ndarray, projections: np.ndarray, show_input: bool) -> np.ndarray:
    """One tile per epoch (E, 28, W): the projection min-max scaled, with the image (as it is) left of it."""
    shown = to_uint8(
        projections, projections.min(axis=(1, 2), keepdims=True), projections.max(axis=(1, 2), keepdims=True)
    )
    if not show_input:
        return shown
    gap = np.full((len(images), 28, GAP), 128, np.uint8)
    return np.concatenate([images, gap, shown], axis=2)


@router.get(
    "/{layer}/{filter}/evolution",
    response_model=FilterEvolution,
    responses=PNG_RESPONSE,
    summary="A filter's strongest image among the first 2,000 test images at each recorded epoch of training; "
    "PNG: a strip, epoch by epoch, of that image beside its projection of the filter with the epoch's weights",
)
def filter_evolution(
    layer: str,
    filter: Filter,
    request: Request,
    model: ModelDep,
    format: Format = "json",
    scale: TileScale = 4,
    show_input: ShowInput = True,
) -> FilterEvolution | Response:
    found = recording(request, model)
    if layer not in found.layers:
        raise NotFound(f"no feature evolution for layer {layer!r}; layers: {', '.join(found.layers)}")
    check_filter(model, layer, filter)
    history = found.of_filter(layer, filter)
    if format == "png":
        tiles = strip(history.images, history.projections, show_input)
        return labelled_row_png(tiles, [f"epoch {epoch}" for epoch in history.epochs], scale)
    return json_response(
        FilterEvolution(
            model=model.name,
            layer=layer,
            filter=filter,
            split="test",
            images=found.subset,
            epochs=[
                EvolutionEpoch(epoch=epoch, index=index, norm=norm)
                for epoch, index, norm in zip(history.epochs, history.indices, history.norms)
            ],
        )
    )
