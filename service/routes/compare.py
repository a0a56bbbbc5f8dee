"""One uploaded digit seen through several classifiers at once: a filter's projection under each model side by side
(the shipped classifier and the activation/optimizer variants of ``python -m training sweep``)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.deps import Digit, Filter, Format, RegistryDep, Scale, check_filter, find_model
from service.errors import Unprocessable
from service.registry import LoadedModel, Registry
from service.render import PNG_RESPONSE, json_response, labelled_row_png
from service.routes.common import ERRORS
from service.routes.deconvolution import digit_projections
from service.schemas import ComparedProjection, ProjectionComparison
from service.uploads import IMAGE_BODY

router = APIRouter(prefix="/v1/compare", tags=["compare"], responses=ERRORS)

Models = Annotated[str | None, Query(description="comma-separated model names (default: every classifier served)")]


def is_classifier(model: LoadedModel) -> bool:
    """Whether ``model`` has the paper's classifier shape: class probabilities and both conv kernels."""
    return "output" in model.layer_shapes and {"conv1", "conv2"} <= set(model.kernels)


def compared_models(registry: Registry, names: str | None) -> list[LoadedModel]:
    """The models named in ``names`` (404 for an unknown one), else every classifier; 422 unless at least two."""
    if names:
        chosen = [find_model(registry, name.strip()) for name in names.split(",") if name.strip()]
        others = [model.name for model in chosen if not is_classifier(model)]
        if others:
            raise Unprocessable(f"only classifiers can be compared; not one: {', '.join(others)}")
    else:
        chosen = [model for model in registry.models.values() if is_classifier(model)]
    if len(chosen) < 2:
        raise Unprocessable(f"comparing needs at least 2 classifiers, got {len(chosen)} "
                            f"({', '.join(model.name for model in chosen) or 'none'}); run `python -m training sweep "
                            "--data-dir MNIST_DIR` to train the activation/optimizer variants")
    return chosen


@router.post("/deconvolution/{layer}/{filter}", response_model=ProjectionComparison, responses=PNG_RESPONSE,
             openapi_extra=IMAGE_BODY,
             summary="One filter's projection of the digit under several classifiers: PNG (default, the tiles side "
                     "by side, each labelled with its model) or JSON raw floats")
def compare_deconvolution(layer: str, filter: Filter, digit: Digit, registry: RegistryDep, models: Models = None,
                          format: Format = "png", scale: Scale = 8) -> Response:
    chosen = compared_models(registry, models)
    for model in chosen:
        check_filter(model, layer, filter)
    maps = [digit_projections(model, layer, digit, [filter])[0] for model in chosen]
    if format == "png":
        return labelled_row_png(maps, [model.name for model in chosen], scale)
    return json_response(ProjectionComparison(layer=layer, filter=filter, shape=list(maps[0].shape), models=[
        ComparedProjection(model=model.name, values=values.tolist()) for model, values in zip(chosen, maps)]))
