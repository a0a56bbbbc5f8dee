"""One uploaded digit seen through several classifiers at once: a filter's projection under each model side by side
(the shipped classifier and the activation/optimizer variants of ``python -m training sweep``)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.api.deps import Digit, Filter, Format, RegistryDep, Scale, find_model
from service.api.error_responses import ERRORS
from service.api.errors import Unprocessable
from service.api.render import PNG_RESPONSE, json_response, labelled_row_png
from service.api.schemas import ComparedProjection, ProjectionComparison
from service.api.uploads import IMAGE_BODY
from service.runtime.registry import LoadedModel, Registry
from service.studies.layers import check_filter, is_paper_classifier, projection_of_digit

router = APIRouter(prefix="/v1/compare", tags=["compare"], responses=ERRORS)

Models = Annotated[
    str | None, Query(description="comma-separated model names, each at most once (default: every classifier served)")
]


def compared_models(registry: Registry, names: str | None) -> list[LoadedModel]:
    """The models named in ``names`` (404 for an unknown one; a name repeated counts once), else every classifier;
    422 unless at least two. At most every served model, so the work is bounded by the registry."""
    if names:
        unique = dict.fromkeys(name.strip() for name in names.split(",") if name.strip())
        chosen = [find_model(registry, name) for name in unique]
        others = [model.name for model in chosen if not is_paper_classifier(model)]
        if others:
            raise Unprocessable(f"only classifiers can be compared; not one: {', '.join(others)}")
    else:
        chosen = [model for model in registry.models.values() if is_paper_classifier(model)]
    if len(chosen) < 2:
        raise Unprocessable(
            f"comparing needs at least 2 classifiers, got {len(chosen)} "
            f"({', '.join(model.name for model in chosen) or 'none'}); run `python -m training sweep "
            "--data-dir MNIST_DIR` to train the activation/optimizer variants"
        )
    return chosen


@router.post(
    "/deconvolution/{layer}/{filter}",
    response_model=ProjectionComparison,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="One filter's projection of the digit under several classifiers: PNG (default, the tiles side "
    "by side, each labelled with its model) or JSON raw floats",
)
def compare_deconvolution(
    layer: str,
    filter: Filter,
    digit: Digit,
    registry: RegistryDep,
    models: Models = None,
    format: Format = "png",
    scale: Scale = 8,
) -> Response:
    chosen = compared_models(registry, models)
    for model in chosen:
        check_filter(model, layer, filter)
    maps = [projection_of_digit(model, digit, layer, [filter])[0] for model in chosen]
    if format == "png":
        return labelled_row_png(maps, [model.name for model in chosen], scale)
    return json_response(
        ProjectionComparison(
            layer=layer,
            filter=filter,
            shape=list(maps[0].shape),
            models=[
                ComparedProjection(model=model.name, values=values.tolist()) for model, values in zip(chosen, maps)
            ],
        )
    )
