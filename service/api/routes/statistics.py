"""Dataset statistics of a classifier (``?model=``, default the shipped one; an imported model with its analysis;
``python -m training analyze``): active-filter counts per class, norm distributions, the confusion matrix and the
training history (the shipped models'), as JSON or as the plots rendered with them."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.api.deps import AnyModelDep, AnyStatisticsDep, Format, ModelDep, loaded_statistics
from service.api.error_responses import STATISTICS_ERRORS
from service.api.errors import NotFound, Unprocessable
from service.api.render import PNG, PNG_RESPONSE
from service.api.schemas import (
    ActiveFilterCounts,
    ConfusionMatrix,
    NormDistribution,
    StatisticsLayer,
    StatisticsSummary,
    TrainingHistory,
)
from service.contract import RULES, plot_name
from service.studies.statistics import DatasetStatistics

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], responses=STATISTICS_ERRORS)

Rule = Annotated[
    Literal["image-mean", "dataset-mean", "filter-label-mean"],
    Query(
        description="when a filter counts as active in an image: `image-mean` (the paper's rule: its norm is above the "
        "mean of the image's norms in the layer), `dataset-mean` (above the dataset threshold, the mean of "
        "all norms), `filter-label-mean` (above the filter's own mean norm over the digit's images)"
    ),
]
Label = Annotated[
    int | None, Query(ge=0, description="one class: a digit 0-9, an imported model's class index (default: every one)")
]


def plot_response(statistics: DatasetStatistics, name: str) -> Response:
    """A plot rendered by ``python -m training analyze``, as it was written (verified at start-up)."""
    data = statistics.plot(name)
    if data is None:
        raise NotFound(
            f"these statistics have no plot {name!r} (the sweep analyses its variants without plots, an imported "
            "model's have the layer-wide ones only): ask for format=json, or draw them with `python -m training "
            "analyze`"
        )
    return Response(data, media_type=PNG)


@router.get("", response_model=StatisticsSummary, summary="What the dataset statistics cover and were computed from")
def statistics_summary(statistics: AnyStatisticsDep, model: AnyModelDep) -> StatisticsSummary:
    data = statistics.data
    rules = RULES if statistics.labelled else ()
    layers = [
        StatisticsLayer(
            layer=layer,
            filters=stats.filters,
            dataset_threshold=stats.dataset_threshold,
            never_active={rule: statistics.active_counts(layer, rule)["never_active"] for rule in rules},
        )
        for layer, stats in data.layers.items()
    ]
    return StatisticsSummary(
        model=model.name,
        model_sha256=data.model_sha256,
        split=data.split,
        images=data.images,
        labelled=statistics.labelled,
        label_counts=data.label_counts if statistics.labelled else None,
        accuracy=data.accuracy if statistics.labelled else None,
        norm=data.norm,
        rules=list(rules),
        layers=layers,
        plots=sorted(statistics.plots),
    )


@router.get(
    "/active-filters/{layer}",
    response_model=ActiveFilterCounts,
    responses=PNG_RESPONSE,
    summary="In how many images of each digit each filter is active; PNG: a digits x filters heatmap "
    "(with `label`: one digit's bar chart)",
)
def active_filter_counts(
    layer: str, statistics: AnyStatisticsDep, rule: Rule = "image-mean", label: Label = None, format: Format = "json"
) -> ActiveFilterCounts | Response:
    statistics.check_layer(layer)
    statistics.check_label(label)
    if format == "png":
        return plot_response(statistics, plot_name("active-filters", layer, rule, label))
    return ActiveFilterCounts(
        layer=layer,
        rule=rule,
        split=statistics.data.split,
        norm=statistics.data.norm,
        **statistics.active_counts(layer, rule, label),
    )


@router.get(
    "/norms/{layer}",
    response_model=NormDistribution,
    responses=PNG_RESPONSE,
    summary="Min, quartiles, max, mean and std of every filter's feature-map norm; PNG: the box plot",
)
def norm_distribution(
    layer: str, statistics: AnyStatisticsDep, label: Label = None, format: Format = "json"
) -> NormDistribution | Response:
    statistics.check_layer(layer)
    if label is not None:
        statistics.check_label(label)
    if format == "png":
        return plot_response(statistics, plot_name("norms", layer, label=label))
    return NormDistribution(
        layer=layer,
        split=statistics.data.split,
        norm=statistics.data.norm,
        label=label,
        images=statistics.images_of(label),
        dataset_threshold=statistics.dataset_threshold(layer),
        filters=statistics.norm_summary(layer, label),
    )


@router.get(
    "/confusion-matrix",
    response_model=ConfusionMatrix,
    responses=PNG_RESPONSE,
    summary="The classifier's confusion matrix on the test set (rows: true digit); PNG: the figure",
)
def confusion_matrix(request: Request, model: ModelDep, format: Format = "json") -> ConfusionMatrix | Response:
    metrics = model.entry.metrics
    if "confusion_matrix" not in metrics:
        raise Unprocessable(f"model {model.name!r} does not classify, so it has no confusion matrix")
    if format == "png":
        return plot_response(loaded_statistics(request, model.name), "confusion-matrix")
    return ConfusionMatrix(
        model=model.name,
        images=metrics["test_images"],
        accuracy=metrics["test_accuracy"],
        per_class_accuracy=metrics["per_class_accuracy"],
        matrix=metrics["confusion_matrix"],
    )


@router.get(
    "/training-history",
    response_model=TrainingHistory,
    responses=PNG_RESPONSE,
    summary="Per-epoch loss and metrics of a model's training; PNG: the training curves",
)
def training_history(request: Request, model: ModelDep, format: Format = "json") -> TrainingHistory | Response:
    if format == "png":
        return plot_response(loaded_statistics(request), plot_name("training-history", model.name))
    history = model.entry.history
    return TrainingHistory(
        model=model.name, epochs=len(history.get("loss", [])), training=model.entry.training, history=history
    )
